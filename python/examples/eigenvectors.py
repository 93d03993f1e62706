"""Open a run, denoise a noisy image, and look at the top eigenvectors of the denoiser's
Jacobian there: the geometry-adaptive harmonic basis of the paper.

    python eigenvectors.py RUN [--image IMAGE.npy] [--sigma 0.1] [--out eigenvectors.png]

RUN is any run folder (`tweedie train`, `tweedie demo`'s study runs, `tweedie import`). Without
--image, a synthetic disk image of the run's size is used. Writes the figure with matplotlib
when it is installed, else the eigenvectors as .npy.
"""
import argparse

import numpy as np

import tweedie


def disk(size):
    yy, xx = np.mgrid[:size, :size] / size
    return (0.3 + 0.5 * ((xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.08)).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--image", help="a .npy image [h, w] (gray) in [0, 1]")
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="eigenvectors.png")
    a = p.parse_args()

    run = tweedie.Run(a.run)
    print(run)
    if a.image:
        x = np.load(a.image).astype(np.float32)
    else:
        size = run.image_shape[1] if run.image_shape else 32
        x = disk(size)
    y = tweedie.noisy(x, a.sigma, a.seed)  # the noise `tweedie jacobian --seed` would draw
    x_hat = run.denoise(y)
    mse = float(np.mean((x_hat - x) ** 2))
    print(f"σ = {a.sigma}: PSNR {10 * np.log10(1 / float(np.mean((y - x) ** 2))):.2f} dB → {10 * np.log10(1 / mse):.2f} dB")
    values, vectors = run.eigenpairs(y, k=a.top, seed=a.seed)
    trace, stderr = run.trace(y, seed=a.seed)
    print("top eigenvalues:", np.round(values, 3).tolist())
    print(f"tr J ≈ {trace:.1f} ± {stderr:.1f} of D = {x.size}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        np.save(a.out.rsplit(".", 1)[0] + ".npy", vectors)
        print("matplotlib not installed: wrote the eigenvectors as .npy")
        return
    fig, axes = plt.subplots(1, a.top + 3, figsize=(1.6 * (a.top + 3), 1.9))
    panels = [(x, "clean"), (y, "noisy"), (x_hat, "denoised")]
    panels += [(v[0], f"λ = {lam:.2f}") for v, lam in zip(vectors, values)]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

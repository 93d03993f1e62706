"""BM3D (PyPI `bm3d`, with the true σ) on the first N Fashion-MNIST test images: the classical
reference of bench/quality.sh. Prints one line per σ: `RESULT bm3d <sigma> <psnr> <input_psnr>`,
PSNR of the mean MSE over the images (peak 1), as `tweedie eval` reports it. The noise is drawn
with numpy (seed 0), not tweedie's streams; over 256 × 784 pixels the two draws' PSNRs differ by
a few hundredths of a dB.
"""
import argparse
import gzip

import bm3d
import numpy as np


def load_idx(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h, w)
    return images[:count].astype(np.float64) / 255.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--sigmas", default="15/255,25/255,50/255,100/255")
    args = p.parse_args()
    clean = load_idx(args.idx, args.count)
    rng = np.random.default_rng(0)
    for spec in args.sigmas.split(","):
        a, _, b = spec.partition("/")
        sigma = float(a) / float(b or 1)
        noisy = clean + sigma * rng.standard_normal(clean.shape)
        out = np.stack([bm3d.bm3d(y, sigma_psd=sigma) for y in noisy])
        mse = np.mean((out - clean) ** 2)
        mse_in = np.mean((noisy - clean) ** 2)
        print(f"RESULT bm3d {sigma:.4f} {-10 * np.log10(mse):.2f} {-10 * np.log10(mse_in):.2f}", flush=True)


if __name__ == "__main__":
    main()

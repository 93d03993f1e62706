"""PyTorch reference for `tweedie bench`: the same BF-UNet (no bias, bias-free batch norm,
average pooling, 2x2 transposed convolutions) and the same workloads, printing
`RESULT <workload> <ms>` lines for bench/compare.sh.

Usage: python reference.py [--preset paper|study] [--reps N] [--workloads ...]
  paper (3 scales x 64): train, eval, vjp, jacobian
  study (2 scales x 16 or 32, 28x28 and 32x32): train, sample, eo, jacobian
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

class BiasFreeNorm(nn.Module):
    """Divide by the batch (train) or running (eval) standard deviation, times a gain."""

    def __init__(self, c):
        super().__init__()
        g = (torch.randn(1, c, 1, 1) * (2.0 / 9.0 / 64.0) ** 0.5).clamp(-0.025, 0.025)
        self.gain = nn.Parameter(g)
        self.register_buffer("running_sd", torch.ones(1, c, 1, 1))

    def forward(self, x):
        if self.training:
            sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
            with torch.no_grad():
                self.running_sd.mul_(0.9).add_(0.1 * sd)
            return x / sd * self.gain
        return x / self.running_sd * self.gain


def conv3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, first=False):
        super().__init__()
        self.conv1, self.conv2 = conv3(cin, cout), conv3(cout, cout)
        self.norm1 = None if first else BiasFreeNorm(cout)
        self.norm2 = BiasFreeNorm(cout)

    def forward(self, x):
        x = self.conv1(x)
        if self.norm1 is not None:
            x = self.norm1(x)
        return F.relu(self.norm2(self.conv2(F.relu(x))))


class BFUNet(nn.Module):
    def __init__(self, K=64, blocks=3):
        super().__init__()
        self.enc = nn.ModuleList(
            [ConvBlock(1, K, first=True)] + [ConvBlock(K << (b - 1), K << b) for b in range(1, blocks)]
        )
        self.mid = ConvBlock(K << (blocks - 1), K << blocks)
        scales = list(reversed(range(blocks)))
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(K << (b + 1), K << b, 2, stride=2, bias=False) for b in scales]
        )
        self.dec = nn.ModuleList([ConvBlock(K << (b + 1), K << b) for b in scales])
        self.last = conv3(K, 1)

    def forward(self, y):
        skips, h = [], y
        for block in self.enc:
            h = block(h)
            skips.append(h)
            h = F.avg_pool2d(h, 2, 2)
        h = self.mid(h)
        for up, dec in zip(self.up, self.dec):
            h = dec(torch.cat([up(h), skips.pop()], dim=1))
        return self.last(h)


def median_ms(fn, reps, warm=2):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def report(name, what, ms, per=None):
    extra = f"  {per[0] / ms * 1e3:8.1f} {per[1]}" if per else ""
    print(f"{what:<44} {ms:9.1f} ms{extra}")
    print(f"RESULT {name} {ms:.3f}", flush=True)


STEPS = 10  # sampler steps timed per round
EO_TRAIN, EO_SIGMA = 10_000, 0.1


def adam_step(net, batch, size):
    """One Adam step of the blind denoising loss (residual prediction), as `tweedie bench`."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, z = torch.randn(batch, 1, size, size), 0.3 * torch.randn(batch, 1, size, size)

    def step():
        net.train()
        loss = ((net(x + z) - z) ** 2).sum() / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def ascent(net, y, h0=0.01, beta=0.1):
    """STEPS steps of the coarse-to-fine stochastic ascent (Kadkhodaie & Simoncelli 2021) on
    the batch y, each sample with its own sigma estimate, as tweedie's sampler."""
    d = y[0].numel()
    for t in range(1, STEPS + 1):
        with torch.no_grad():
            f = y - net(y)
        direction = f - y
        sigma = direction.flatten(1).norm(dim=1) / d**0.5
        h = h0 * t / (1 + h0 * (t - 1))
        gamma = sigma * max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0) ** 0.5
        y = y + h * direction + gamma.view(-1, 1, 1, 1) * torch.randn_like(y)
    return y


def euler(net, y, sigma_max=1.0, sigma_min=0.01):
    """STEPS probability-flow Euler steps on a geometric schedule, as tweedie's sampler."""
    sigmas = [sigma_max * (sigma_min / sigma_max) ** (i / STEPS) for i in range(STEPS + 1)]
    for s, s_next in zip(sigmas, sigmas[1:]):
        with torch.no_grad():
            f = y - net(y)
        y = y + (s_next - s) / s * (y - f)
    return y


def empirical_optimal(train, y, sigma):
    """The posterior mean over the training images: softmax of -|y - x_k|^2 / 2 sigma^2."""
    d2 = torch.cdist(y, train) ** 2
    return torch.softmax(-d2 / (2 * sigma**2), dim=1) @ train


def study(args):
    for w in args.workloads.split(","):
        if w == "train":
            for k, size in [(16, 28), (16, 32), (32, 28), (32, 32)]:
                step = adam_step(BFUNet(K=k, blocks=2), 32, size)
                report(f"train_2x{k}_{size}", f"train 2x{k} (Adam step, batch 32, {size}x{size})",
                       median_ms(step, args.reps), (32, "images/s"))
        elif w == "sample":
            net = BFUNet(K=16, blocks=2).eval()
            y0 = 0.5 + torch.randn(64, 1, 28, 28)
            for name, sampler in [("ascent_step", ascent), ("euler_step", euler)]:
                ms = median_ms(lambda: sampler(net, y0), args.reps) / STEPS
                report(name, f"{name} (2x16, 64 images 28x28, per step)", ms, (64, "images/s"))
        elif w == "eo":
            train, y = torch.randn(EO_TRAIN, 784), torch.randn(64, 784)
            for name, sigma in [("eo_10000", EO_SIGMA), ("eo_10000_broad", 1.0)]:
                ms = median_ms(lambda: empirical_optimal(train, y, sigma), args.reps)
                report(name, f"empirical optimal (float32), N = 10 000, 64 images, sigma {sigma}", ms,
                       (64, "images/s"))
        elif w == "jacobian":
            net = BFUNet(K=16, blocks=2).eval()
            for p in net.parameters():
                p.requires_grad_(False)
            y = torch.randn(1, 1, 28, 28)

            def jac():
                torch.func.jacrev(lambda v: (v - net(v)).reshape(-1))(y)

            report("jacobian_2x16_28", "dense 28x28 Jacobian, 2x16 (torch.func.jacrev)",
                   median_ms(jac, min(args.reps, 3)))
        else:
            raise SystemExit(f"unknown workload {w}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper", choices=["paper", "study"])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--workloads", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}")
    if args.preset == "study":
        args.workloads = args.workloads or "train,sample,eo,jacobian"
        return study(args)
    args.workloads = args.workloads or "train,eval,vjp"
    net = BFUNet()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{sum(p.numel() for p in net.parameters())} parameters")
    for w in args.workloads.split(","):
        if w == "train":
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)
            x, z = torch.randn(16, 1, 40, 40), 0.3 * torch.randn(16, 1, 40, 40)

            def step():
                net.train()
                loss = ((net(x + z) - z) ** 2).sum() / 16
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            report("train", "train (Adam step, batch 16, 40x40)", median_ms(step, args.reps), (16, "images/s"))
        elif w == "eval":
            net.eval()
            y = torch.randn(16, 1, 80, 80)

            def fwd():
                with torch.no_grad():
                    net(y)

            report("eval", "eval (batch 16, 80x80)", median_ms(fwd, args.reps), (16, "images/s"))
        elif w == "vjp":
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            y0, vs = torch.randn(1, 1, 80, 80), torch.randn(16, 1, 80, 80)

            def vjps():
                y = y0.clone().requires_grad_(True)
                f = y - net(y)
                for k in range(16):
                    torch.autograd.grad(f, y, vs[k : k + 1], retain_graph=k < 15)

            report("vjp", "vjp (16 VJPs at one 80x80, 1 fwd + 16 bwd)", median_ms(vjps, args.reps), (16, "VJPs/s"))
            for p in net.parameters():
                p.requires_grad_(True)
        elif w == "jacobian":
            net.eval()
            y = torch.randn(1, 1, 40, 40)

            def f(v):
                return (v - net(v)).reshape(-1)

            t = time.perf_counter()
            jac = torch.func.jacrev(f)(y).reshape(1600, 1600)
            report("jacobian_vjp", "full 40x40 Jacobian (torch.func.jacrev)", (time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            torch.linalg.eigh(0.5 * (jac + jac.T).double())
            report("jacobian_eigh", "full 40x40 Jacobian: eigendecomposition", (time.perf_counter() - t) * 1e3)
        else:
            raise SystemExit(f"unknown workload {w}")


if __name__ == "__main__":
    main()

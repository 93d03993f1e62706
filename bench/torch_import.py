#!/usr/bin/env python3
"""PyTorch side of `tweedie import`: independent definitions of the networks it reads.

The architectures are written here from their repositories' definitions (read, not copied):
  - BF_CNN of LabForComputationalVision/universal_inverse_problem (code/network.py):
    conv_layers, running_sd.i, gammas.i ([1, k, 1, 1]); forward returns the noise.
  - BF_CNN of LabForComputationalVision/memorization_generalization_in_diffusion_models
    (code/network.py): the same with BN_layers.i.{running_sd, gammas}.
  - UNet of LabForComputationalVision/bias_free_denoising (models/unet.py) without bias,
    residual=False (its published weights): 5×5, 3×3, stride-2, dilated and transposed
    convolutions; forward returns x̂.
  - DnCNN with BFBatchNorm2d of LabForComputationalVision/bias_free_denoising
    (models/dncnn.py, models/BFBatchNorm2d.py): eval divides by sqrt(running_var) + eps;
    forward returns y - residual; saved by its train.py as {"model": [state_dict], "args": ...}.

    fixtures OUT   small random networks in both containers (zip and legacy pickle), fixed
                   inputs and the networks' outputs, plus foreign checkpoints; the committed
                   files under tests/fixtures/torch/ are this command's output.
    real DIR IMAGES OUT
                   the real checkpoints in DIR (file names as in REAL below) denoising the
                   images IMAGES/gray.npy and IMAGES/color.npy ([n, c, h, w] in [0, 1]) with
                   seeded noise: writes OUT/<name>/noisy-<s>.npy and torch-<s>.npy (x̂, one
                   batched forward) and prints PSNR and seconds per image.
    compare IMAGES OUT
                   PSNR of OUT/<name>/torch-<s>.npy, ours-<s>.npy (tweedie's x̂ of the same
                   noisy images) and, when the bm3d package is installed, BM3D with the true σ;
                   a markdown table.

Needs torch and numpy (bench/.venv, made by bench/compare.sh). Never imported by tweedie.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class UipBfCnn(nn.Module):
    """universal_inverse_problem's BF_CNN (paper=False) or the generalization paper's (True)."""

    def __init__(self, channels, kernels, layers, paper=False):
        super().__init__()
        self.paper = paper
        self.conv_layers = nn.ModuleList(
            [nn.Conv2d(channels, kernels, 3, padding=1, bias=False)]
            + [nn.Conv2d(kernels, kernels, 3, padding=1, bias=False) for _ in range(layers - 2)]
            + [nn.Conv2d(kernels, channels, 3, padding=1, bias=False)]
        )
        if paper:
            self.BN_layers = nn.ModuleList([PaperNorm(kernels) for _ in range(layers - 2)])
        else:
            self.running_sd = nn.ParameterList(
                [nn.Parameter(torch.ones(1, kernels, 1, 1), requires_grad=False) for _ in range(layers - 2)]
            )
            self.gammas = nn.ParameterList(
                [nn.Parameter(torch.ones(1, kernels, 1, 1)) for _ in range(layers - 2)]
            )

    def forward(self, x):
        x = F.relu(self.conv_layers[0](x))
        for i, conv in enumerate(self.conv_layers[1:-1]):
            x = conv(x)
            if self.paper:
                x = self.BN_layers[i](x)
            else:
                x = x / self.running_sd[i] * self.gammas[i]
            x = F.relu(x)
        return self.conv_layers[-1](x)


class PaperNorm(nn.Module):
    """The generalization paper's BF_batchNorm in eval mode."""

    def __init__(self, k):
        super().__init__()
        self.register_buffer("running_sd", torch.ones(1, k, 1, 1))
        self.gammas = nn.Parameter(torch.ones(1, k, 1, 1))

    def forward(self, x):
        return x / self.running_sd * self.gammas


class BFBatchNorm2d(nn.BatchNorm2d):
    """bias_free_denoising's bias-free batch norm, eval mode: x / (sqrt(running_var) + eps) * weight."""

    def forward(self, x):
        sd = self.running_var.view(1, -1, 1, 1) ** 0.5 + self.eps
        return x / sd * self.weight.view(1, -1, 1, 1)


class DnCNN(nn.Module):
    """bias_free_denoising's DnCNN without bias: forward returns y - residual."""

    def __init__(self, channels, kernels, depth):
        super().__init__()
        self.depth = depth
        self.first_layer = nn.Conv2d(channels, kernels, 3, padding=1, bias=False)
        self.hidden_layer_list = nn.ModuleList(
            [nn.Conv2d(kernels, kernels, 3, padding=1, bias=False) for _ in range(depth - 2)]
        )
        self.bn_layer_list = nn.ModuleList([BFBatchNorm2d(kernels) for _ in range(depth - 2)])
        self.last_layer = nn.Conv2d(kernels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        out = F.relu(self.first_layer(x))
        for conv, bn in zip(self.hidden_layer_list, self.bn_layer_list):
            out = F.relu(bn(conv(out)))
        return x - self.last_layer(out)


class UNet2020(nn.Module):
    """bias_free_denoising's UNet without bias, residual=False: forward returns x̂."""

    def __init__(self, channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2, bias=False)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.conv5 = nn.Conv2d(64, 64, 3, dilation=2, padding=2, bias=False)
        self.conv6 = nn.Conv2d(64, 64, 3, dilation=4, padding=4, bias=False)
        self.conv7 = nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1, bias=False)
        self.conv8 = nn.Conv2d(96, 32, 3, padding=1, bias=False)
        self.conv9 = nn.Conv2d(32, channels, 5, padding=2, bias=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2))
        out = F.relu(self.conv1(x))
        saved = F.relu(self.conv2(out))
        out = F.relu(self.conv3(saved))
        out = F.relu(self.conv4(out))
        out = F.relu(self.conv5(out))
        out = F.relu(self.conv6(out))
        out = F.relu(self.conv7(out))
        out = F.relu(self.conv8(torch.cat([out, saved], dim=1)))
        return self.conv9(out)[:, :, :h, :w]


def randomize(net, gen):
    """Weights with the statistics of a trained network: He-scaled convolutions, gains near 1,
    running standard deviations spread over [0.5, 2] (so a wrong formula shows)."""
    with torch.no_grad():
        for name, p in list(net.named_parameters()) + list(net.named_buffers()):
            if p.dtype != torch.float32:
                continue
            if p.dim() == 4 and p.shape[-1] in (3, 4, 5):
                fan_in = p.shape[1] * p.shape[-1] ** 2
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif "running_sd" in name:
                p.copy_(0.5 + 1.5 * torch.rand(p.shape, generator=gen))
            elif "running_var" in name:
                p.copy_((0.5 + 1.5 * torch.rand(p.shape, generator=gen)) ** 2)
            elif "gammas" in name or name.endswith("weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
    return net.eval()


def save_both(obj, out, stem):
    torch.save(obj, os.path.join(out, stem + "-zip.pt"))
    torch.save(obj, os.path.join(out, stem + "-legacy.pt"), _use_new_zipfile_serialization=False)


def fixtures(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20261205)
    cases = {
        # name: (network, what torch.save is given, tweedie --arch)
        "uip-gray": (UipBfCnn(1, 8, 5), None, "bf-cnn"),
        "uip-color": (UipBfCnn(3, 6, 4), None, "bf-cnn"),
        "paper-gray": (UipBfCnn(1, 8, 4, paper=True), None, "bf-cnn"),
        "dncnn-gray": (DnCNN(1, 8, 5), "train.py", "bf-dncnn"),
        "unet2020-gray": (UNet2020(1), "train.py", "bf-unet-2020"),
    }
    index = {}
    for name, (net, wrap, arch) in cases.items():
        randomize(net, gen)
        sd = net.state_dict()
        obj = sd
        if wrap == "train.py":
            # as bias_free_denoising's save_checkpoint writes it
            obj = {"model": [sd], "optimizer": None, "args": argparse.Namespace(bias=False)}
        save_both(obj, out, name)
        c = next(net.parameters()).shape[1]
        # odd width: the UNet's padding is part of what is compared
        y = torch.rand((2, c, 12, 11), generator=gen) + 0.1 * torch.randn((2, c, 12, 11), generator=gen)
        with torch.no_grad():
            forward = net(y)
        denoised = y - forward if arch == "bf-cnn" else forward
        np.save(os.path.join(out, name + "-input.npy"), y.numpy())
        np.save(os.path.join(out, name + "-denoised.npy"), denoised.numpy())
        np.save(os.path.join(out, name + "-forward.npy"), forward.numpy())
        index[name] = {"arch": arch, "params": sum(p.numel() for p in net.parameters())}
    # foreign files: a classifier's state dict (with biases), and a whole pickled module
    resnetish = nn.Sequential(nn.Conv2d(1, 4, 3, bias=True), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    torch.save(resnetish.state_dict(), os.path.join(out, "foreign-classifier.pt"))
    biased = UipBfCnn(1, 4, 3)
    biased.conv_layers[0] = nn.Conv2d(1, 4, 3, padding=1, bias=True)
    torch.save(biased.state_dict(), os.path.join(out, "foreign-biased.pt"))
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    print(f"wrote {len(cases)} networks × 2 containers and 2 foreign files to {out}")


REAL = {
    # name: (file under DIR, loader, test images, gray)
    "uip-bsd400-gray": ("uip_BSD400_gray.pt", "uip", "gray"),
    "uip-bsd300-color": ("uip_BSD300_color.pt", "uip", "color"),
    "bfd-dncnn-0-55": ("bfd_dncnn_0-55.pt", "dncnn", "gray"),
    "bfd-dncnn-0-100": ("bfd_dncnn_0-100.pt", "dncnn", "gray"),
    "bfd-unet-0-55": ("bfd_unet_0-55.pt", "unet", "gray"),
    "bfd-unet-0-100": ("bfd_unet_0-100.pt", "unet", "gray"),
}


def load_real(path, kind):
    if kind == "uip":
        sd = torch.load(path, map_location="cpu", weights_only=True)
        layers = len([k for k in sd if k.startswith("conv_layers.")])
        c, k = sd["conv_layers.0.weight"].shape[1], sd["conv_layers.0.weight"].shape[0]
        net = UipBfCnn(c, k, layers)
    elif kind == "unet":
        sd = torch.load(path, map_location="cpu", weights_only=False)["model"][0]
        net = UNet2020(sd["conv1.weight"].shape[1])
    else:
        sd = torch.load(path, map_location="cpu", weights_only=False)["model"][0]
        layers = len([k for k in sd if k.startswith("hidden_layer_list.")]) + 2
        net = DnCNN(1, sd["first_layer.weight"].shape[0], layers)
    net.load_state_dict(sd)
    return net.eval()


def real(src, images, out, sigmas, only=None):
    """Each real network on the images in `images` (a .npy per set: gray.npy [n,1,h,w],
    color.npy [n,3,h,w]): noisy inputs (seeded), PyTorch's x̂ and its PSNR."""
    torch.set_num_threads(os.cpu_count())
    for name, (file, kind, which) in REAL.items():
        if only and name not in only:
            continue
        path = os.path.join(src, file)
        if not os.path.exists(path):
            print(f"{name}: {path} missing, skipped", file=sys.stderr)
            continue
        net = load_real(path, kind)
        clean = torch.from_numpy(np.load(os.path.join(images, which + ".npy")))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for s in sigmas:
            gen = torch.Generator().manual_seed(int(s))
            noisy = clean + torch.randn(clean.shape, generator=gen) * (s / 255.0)
            with torch.no_grad():
                t0 = time.perf_counter()
                x = net(noisy)
                dt = (time.perf_counter() - t0) / len(noisy)
            if kind == "uip":
                x = noisy - x
            mse = ((x - clean) ** 2).flatten(1).mean(1)
            psnr = (10 * torch.log10(1.0 / mse)).mean().item()
            np.save(os.path.join(out, name, f"noisy-{int(s)}.npy"), noisy.numpy())
            np.save(os.path.join(out, name, f"torch-{int(s)}.npy"), x.numpy())
            print(json.dumps({"net": name, "sigma": s, "psnr": round(psnr, 4), "s_per_image": round(dt, 4)}))


def psnr(x, clean):
    mse = ((x.astype(np.float64) - clean) ** 2).reshape(len(x), -1).mean(1)
    return float((10 * np.log10(1.0 / mse)).mean())


def compare(images, out):
    try:
        import bm3d
    except ImportError:
        bm3d = None
    print("| network | test images | σ (/255) | PyTorch PSNR | tweedie PSNR | difference | max abs diff | BM3D PSNR |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, (_, _, which) in REAL.items():
        clean = np.load(os.path.join(images, which + ".npy")).astype(np.float64)
        for s in (15, 25, 50):
            d = os.path.join(out, name)
            if not os.path.exists(os.path.join(d, f"ours-{s}.npy")):
                continue
            noisy = np.load(os.path.join(d, f"noisy-{s}.npy"))
            t = np.load(os.path.join(d, f"torch-{s}.npy"))
            o = np.load(os.path.join(d, f"ours-{s}.npy"))
            b = "–"
            if bm3d is not None:
                sd = s / 255.0
                if which == "gray":
                    den = np.stack([bm3d.bm3d(n[0], sd)[None] for n in noisy])
                else:
                    den = np.stack([bm3d.bm3d_rgb(n.transpose(1, 2, 0), sd).transpose(2, 0, 1) for n in noisy])
                b = f"{psnr(den, clean):.2f}"
            pt, po = psnr(t, clean), psnr(o, clean)
            print(f"| {name} | {len(clean)} {which} | {s} | {pt:.3f} | {po:.3f} | {po - pt:+.4f} | {np.abs(o - t).max():.1e} | {b} |")


def speed(src, images, rounds):
    """Median seconds of one forward pass of universal_inverse_problem's BSD400 BF-CNN on one
    256×256 image (no_grad, all cores), over `rounds` passes after a warm-up."""
    torch.set_num_threads(os.cpu_count())
    net = load_real(os.path.join(src, REAL["uip-bsd400-gray"][0]), "uip")
    y = torch.from_numpy(np.load(os.path.join(images, "gray.npy"))[:1])
    times = []
    with torch.no_grad():
        net(y)
        for _ in range(rounds):
            t0 = time.perf_counter()
            net(y)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"torch_s": sorted(times)[len(times) // 2]}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("out")
    r = sub.add_parser("real")
    r.add_argument("checkpoints")
    r.add_argument("images")
    r.add_argument("out")
    r.add_argument("--sigmas", default="15,25,50")
    r.add_argument("--nets", default="", help="comma-separated names of REAL (default: all)")
    sp = sub.add_parser("speed")
    sp.add_argument("checkpoints")
    sp.add_argument("images")
    sp.add_argument("--rounds", type=int, default=5)
    c = sub.add_parser("compare")
    c.add_argument("images")
    c.add_argument("out")
    a = p.parse_args()
    torch.manual_seed(0)
    if a.cmd == "fixtures":
        fixtures(a.out)
    elif a.cmd == "speed":
        speed(a.checkpoints, a.images, a.rounds)
    elif a.cmd == "compare":
        compare(a.images, a.out)
    else:
        only = [n for n in a.nets.split(",") if n]
        real(a.checkpoints, a.images, a.out, [float(s) for s in a.sigmas.split(",")], only)


if __name__ == "__main__":
    main()

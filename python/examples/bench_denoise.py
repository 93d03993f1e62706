"""The cost of Python: a denoise of a batch through the package against the same call timed
inside Rust (`tweedie bench --preset denoise`), on the same run. Prints both and the ratio.

    python bench_denoise.py RUN [--count 64] [--size 28] [--reps 10]
"""
import argparse
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np

import tweedie


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--bin", default=None, help="the tweedie binary [default: $CARGO_TARGET_DIR or target/release]")
    a = p.parse_args()
    repo = Path(__file__).resolve().parents[2]
    binary = a.bin or str(Path(os.environ.get("CARGO_TARGET_DIR", repo / "target")) / "release" / "tweedie")

    run = tweedie.Run(a.run)
    y = np.random.default_rng(0).standard_normal((a.count, run.image_channels, a.size, a.size)).astype(np.float32)
    for _ in range(2):
        run.denoise(y)
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        run.denoise(y)
        times.append(time.perf_counter() - t0)
    python_ms = 1e3 * sorted(times)[len(times) // 2]
    out = subprocess.run(
        [binary, "bench", "--preset", "denoise", "--run", a.run, "--count", str(a.count),
         "--size", str(a.size), "--reps", str(a.reps), "--device", "cpu"],
        check=True, capture_output=True, text=True,
    ).stdout
    rust_ms = float(re.search(r"RESULT denoise ([0-9.]+)", out).group(1))
    print(f"denoise of {a.count} images of {a.size}×{a.size}: Python {python_ms:.2f} ms, Rust {rust_ms:.2f} ms, "
          f"Python/Rust {python_ms / rust_ms:.3f}")


if __name__ == "__main__":
    main()

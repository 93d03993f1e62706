#!/usr/bin/env bash
# Denoising quality against references that cannot flatter us, with the default training recipe:
#   1. Gaussian fields (1/|f|^2 spectrum, 24×24, open edges): test MSE over the exact Wiener MSE
#      and over the blind optimum for the run's training prior.
#   2. Fashion-MNIST, first 256 test images: PSNR against BM3D (PyPI `bm3d`, true σ), which is
#      installed into bench/.venv on first use (never needed by the tool or CI).
# Prints one table per family and the wall time of each training.
#   bench/quality.sh           the README's budgets (≈ 3 + 10 min of training, BM3D ≈ 5 min)
#   bench/quality.sh --quick   tiny budgets (a few minutes; a smoke test, not a result)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; fi
gauss_steps=5000 fm_steps=3000 count=256
if [ "$quick" = 1 ]; then gauss_steps=300 fm_steps=200 count=32; fi

cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/tweedie"
out=bench/.quality
rm -rf "$out/runs"
mkdir -p "$out/runs"

seconds() { local t0=$SECONDS; "$@" > "$out/last.log" 2>&1 || { cat "$out/last.log"; exit 1; }; echo $((SECONDS - t0)); }

# 1. Gaussian fields
"$bin" data synth gaussian --size 24 --count 10000 --seed 1 --out "$out/gauss24.npy" > /dev/null
t=$(seconds "$bin" train --data "$out/gauss24.npy" --arch bf-unet --blocks 2 --channels 16 \
      --batch 32 --sigma-max 0.5 --steps "$gauss_steps" --seed 0 --device cpu --out "$out/runs/gauss")
"$bin" eval --run "$out/runs/gauss" --sigmas 1/255,0.01,0.02,0.05,0.1,0.2,0.4 --count 1000 \
      --optimum --device cpu > "$out/gauss.txt"
echo "Gaussian fields 24×24 (γ = 2, open edges), BF-UNet 2 × 16 channels, $gauss_steps steps of 32: ${t} s of training"
python3 - "$out/runs/gauss/eval.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
print(f"{'σ':>8} {'ours MSE':>10} {'Wiener':>10} {'blind':>10} {'homog.':>10} {'noisy':>10} {'/Wiener':>8} {'/blind':>8} {'/homog.':>8}")
for r, o, b, h in zip(e["test"], e["optimum"], e["blind_optimum"], e["homogeneous_optimum"]):
    noisy = 10 ** (-r["input_psnr"] / 10)
    m = r["mse"]
    print(f"{r['sigma']:>8.4f} {m:>10.3e} {o['mse']:>10.3e} {b['mse']:>10.3e} {h['mse']:>10.3e} {noisy:>10.3e} {m / o['mse']:>8.3f} {m / b['mse']:>8.3f} {m / h['mse']:>8.3f}")
print("(blind: the posterior mean for σ unknown under the run's training prior; homog.: the same with the")
print(" field's amplitude unknown too, the bias-free bound; both optimal on average over that prior)")
PY

# 2. Fashion-MNIST against BM3D
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist): skipped"
  exit 0
fi
if ! bench/.venv/bin/python -c "import bm3d" 2> /dev/null; then
  [ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q bm3d numpy
fi
sigmas="5/255,15/255,25/255,50/255,100/255"
t=$(seconds "$bin" train --data fashion-mnist --arch bf-unet --blocks 2 --channels 32 --batch 32 \
      --sigma-max 1 --steps "$fm_steps" --seed 0 --device cpu --out "$out/runs/fm")
"$bin" eval --run "$out/runs/fm" --sigmas "$sigmas" --count "$count" --device cpu > "$out/fm.txt"
bench/.venv/bin/python bench/bm3d_reference.py --count "$count" --sigmas "$sigmas" > "$out/bm3d.txt"
echo
echo "Fashion-MNIST, first $count test images, BF-UNet 2 × 32 channels on the 60 000 training images, $fm_steps steps of 32: ${t} s of training"
python3 - "$out/runs/fm/eval.json" "$out/bm3d.txt" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
bm3d = {round(float(l.split()[2]), 4): float(l.split()[3]) for l in open(sys.argv[2]) if l.startswith("RESULT")}
print(f"{'σ·255':>6} {'ours dB':>8} {'BM3D dB':>8} {'noisy dB':>9} {'ours − BM3D':>12}")
for r in e["test"]:
    b = bm3d.get(round(r["sigma"], 4), float("nan"))
    print(f"{r['sigma'] * 255:>6.0f} {r['psnr']:>8.2f} {b:>8.2f} {r['input_psnr']:>9.2f} {r['psnr'] - b:>12.2f}")
PY

#!/usr/bin/env bash
# Runs `tweedie bench` and the PyTorch reference (bench/reference.py) alternately on this
# machine, 5 rounds, and prints one table: workload, ours and PyTorch (median ms over the
# rounds), the ratio (PyTorch/ours: above 1 means we are faster) as the median of the rounds'
# ratios with their range, and our effective rate (direct-convolution FLOPs over the median time)
# against the machine's GEMM rate measured in the same runs. Alternating rounds and medians keep
# one noisy moment from making a result. Installs torch into bench/.venv from PyPI on first use.
#   bench/compare.sh            the paper's network: 5 rounds, 10 reps each, + the 40×40 Jacobian
#   bench/compare.sh --quick    the paper's network: 5 rounds, 3 reps, no Jacobian
#   bench/compare.sh --study    the experiments' small networks, samplers, empirical-optimal
#                               denoiser and 28×28 Jacobian: 5 rounds, 10 reps
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
rounds=5 reps=10 preset=paper workloads="train,eval,vjp,jacobian"
case "${1:-}" in
  --quick) reps=3 workloads="train,eval,vjp" ;;
  --study) preset=study workloads="train,sample,eo,jacobian" ;;
esac

if ! bench/.venv/bin/python -c "import torch, numpy" 2> /dev/null; then
  [ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q "torch==${TORCH_VERSION}" numpy
fi
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/tweedie"
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds"
  "$bin" bench --device cpu --preset "$preset" --reps "$reps" --workloads "$workloads" | tee "$out/ours.$r"
  bench/.venv/bin/python bench/reference.py --preset "$preset" --reps "$reps" --workloads "$workloads" | tee "$out/torch.$r"
done
python3 - "$out" "$rounds" <<'PY'
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def read(p, tag="RESULT"):
    d = {}
    for line in open(p):
        if line.startswith(tag + " "):
            _, k, v = line.split()
            d[k] = float(v)
    return d
ours = [read(f"{out}/ours.{r}") for r in range(1, rounds + 1)]
ref = [read(f"{out}/torch.{r}") for r in range(1, rounds + 1)]
flops = read(f"{out}/ours.1", "FLOPS")
gemm = statistics.median(o.pop("gemm_gflops") for o in ours if "gemm_gflops" in o)
print(f"\nmachine GEMM rate (faer f32, 2048², all cores): {gemm:.1f} GFLOP/s (median of {rounds} runs)")
print(f"{'workload':<18} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'range':>11} {'GFLOP/s':>8} {'of GEMM':>8}")
for k in ours[0]:
    if not all(k in r for r in ref):
        continue
    t_ours = statistics.median(o[k] for o in ours)
    t_ref = statistics.median(r[k] for r in ref)
    ratios = [r[k] / o[k] for o, r in zip(ours, ref)]
    rate = flops[k] / (t_ours / 1e3) / 1e9 if k in flops else float("nan")
    print(f"{k:<18} {t_ours:>9.1f} {t_ref:>9.1f} {statistics.median(ratios):>6.2f} "
          f"{min(ratios):>5.2f}–{max(ratios):<5.2f} {rate:>8.1f} {100 * rate / gemm:>7.0f}%")
PY

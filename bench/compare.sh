#!/usr/bin/env bash
# Runs `tweedie bench` and the PyTorch reference (bench/reference.py) alternately on this
# machine and prints one table: workload, ours (ms), PyTorch (ms), ratio (PyTorch/ours: above 1
# means we are faster). Installs torch into bench/.venv from PyPI on first use.
#   bench/compare.sh            full run (3 rounds, 10 reps each, + the 40×40 Jacobian)
#   bench/compare.sh --quick    1 round, 3 reps, no Jacobian (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
rounds=3 reps=10 workloads="train,eval,vjp,jacobian"
if [ "${1:-}" = "--quick" ]; then rounds=1 reps=3 workloads="train,eval,vjp"; fi

if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q "torch==${TORCH_VERSION}" numpy
fi
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/tweedie"
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  "$bin" bench --device cpu --reps "$reps" --workloads "$workloads" | tee -a "$out/ours"
  bench/.venv/bin/python bench/reference.py --reps "$reps" --workloads "$workloads" | tee -a "$out/torch"
done
python3 - "$out/ours" "$out/torch" <<'PY'
import statistics, sys
def read(p):
    d = {}
    for line in open(p):
        if line.startswith("RESULT "):
            _, k, v = line.split()
            d.setdefault(k, []).append(float(v))
    return {k: statistics.median(v) for k, v in d.items()}
ours, ref = read(sys.argv[1]), read(sys.argv[2])
print(f"\n{'workload':<16} {'ours (ms)':>12} {'PyTorch (ms)':>14} {'ratio':>8}")
for k in ours:
    if k in ref:
        print(f"{k:<16} {ours[k]:>12.1f} {ref[k]:>14.1f} {ref[k] / ours[k]:>8.2f}")
PY

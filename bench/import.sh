#!/usr/bin/env bash
# The real PyTorch checkpoints `tweedie import` reads, against the same networks in PyTorch
# (and BM3D) on the same noisy images: PSNR of each, their difference, and seconds per image.
#
#   bench/import.sh CHECKPOINTS IMAGES OUT
#
# CHECKPOINTS holds the files named in bench/torch_import.py's REAL table (docs/import.md says
# where to get them); IMAGES holds gray.npy and color.npy ([n, c, h, w] float32 in [0, 1]).
# Needs bench/.venv (bench/compare.sh makes it); `pip install bm3d` there adds the BM3D column.
# NETS=a,b (names of the REAL table) restricts it to those networks.
set -euo pipefail
ckpt=$1 images=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
py=$here/.venv/bin/python
cargo build --release -q
tweedie=${CARGO_TARGET_DIR:-$here/../target}/release/tweedie
"$py" "$here/torch_import.py" real "$ckpt" "$images" "$out" --nets "${NETS:-}" | tee "$out.torch.jsonl"
declare -A arch=([uip-bsd400-gray]=bf-cnn [uip-bsd300-color]=bf-cnn [bfd-dncnn-0-55]=bf-dncnn [bfd-dncnn-0-100]=bf-dncnn [bfd-unet-0-55]=bf-unet-2020 [bfd-unet-0-100]=bf-unet-2020)
declare -A file=([uip-bsd400-gray]=uip_BSD400_gray.pt [uip-bsd300-color]=uip_BSD300_color.pt [bfd-dncnn-0-55]=bfd_dncnn_0-55.pt [bfd-dncnn-0-100]=bfd_dncnn_0-100.pt [bfd-unet-0-55]=bfd_unet_0-55.pt [bfd-unet-0-100]=bfd_unet_0-100.pt)
for name in "${!arch[@]}"; do
  [ -f "$ckpt/${file[$name]}" ] || continue
  [ -z "${NETS:-}" ] || [[ ",$NETS," == *",$name,"* ]] || continue
  rm -rf "$out/$name/run"
  start=$(date +%s.%N)
  "$tweedie" import "$ckpt/${file[$name]}" --arch "${arch[$name]}" --out "$out/$name/run" > /dev/null
  echo "{\"net\": \"$name\", \"import_s\": $(echo "$(date +%s.%N) - $start" | bc)}"
  for s in 15 25 50; do
    n=$("$py" -c "import numpy as np; print(len(np.load('$out/$name/noisy-$s.npy')))")
    start=$(date +%s.%N)
    "$tweedie" denoise --run "$out/$name/run" --input "$out/$name/noisy-$s.npy" --output "$out/$name/ours-$s.npy" > /dev/null
    echo "{\"net\": \"$name\", \"sigma\": $s, \"tweedie_s_per_image\": $(echo "($(date +%s.%N) - $start) / $n" | bc -l | cut -c1-6)}"
  done
done | tee "$out.tweedie.jsonl"
"$py" "$here/torch_import.py" compare "$images" "$out"

# speed: the BSD400 BF-CNN on one 256×256 image, three alternating rounds, PyTorch/tweedie
if [ -d "$out/uip-bsd400-gray/run" ]; then
  for round in 1 2 3; do
    ours=$("$tweedie" bench --preset denoise --run "$out/uip-bsd400-gray/run" --size 256 --reps 5 | sed -n 's/^RESULT denoise //p')
    theirs=$("$py" "$here/torch_import.py" speed "$ckpt" "$images" | sed -n 's/.*"torch_s": \([0-9.e-]*\).*/\1/p')
    echo "round $round: tweedie $ours ms, PyTorch $(echo "$theirs * 1000" | bc -l | cut -c1-7) ms, PyTorch/tweedie $(echo "$theirs * 1000 / $ours" | bc -l | cut -c1-5)"
  done
fi

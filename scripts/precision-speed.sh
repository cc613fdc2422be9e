#!/usr/bin/env bash
# Training-step throughput in fp32 and bf16, Darkroom's `bench train-step` beside the PyTorch
# anchor (`torch_dcgan.py speed`, fp32 and --bf16 autocast), alternating in one run: ROUNDS rounds
# (default 3) at 64 px RGB and 32 px gray, batch 64. Prints one line per measurement:
#   size channels implementation precision img/s
# PY: a Python with torch; ANCHOR: the anchor script. CPUS (say 0,1) pins both sides to those
# CPUs with taskset, as on a machine with more cores than the 2 these figures are for (oneDNN's
# OpenMP threads follow the mask; the anchor takes 2 threads anyway).
set -euo pipefail
B=${B:-.build/release/darkroom}
PY=${PY:-/root/torch-venv/bin/python}
ANCHOR=${ANCHOR:-../shared/anchors/torch_dcgan.py}
ROUNDS=${ROUNDS:-3}
pin=()
if [ -n "${CPUS:-}" ]; then pin=(taskset -c "$CPUS"); fi
field() { python3 -c "import json,sys;print(round(json.load(sys.stdin)['img_per_s'],1))"; }
for _ in $(seq "$ROUNDS"); do
  for shape in "64 3 10" "32 1 40"; do
    set -- $shape
    size=$1 channels=$2 iterations=$3
    for precision in fp32 bf16; do
      echo "$size $channels darkroom $precision $("${pin[@]}" "$B" bench train-step --size "$size" --channels "$channels" --batch 64 --iterations "$iterations" --precision "$precision" | field)"
    done
    echo "$size $channels pytorch fp32 $("${pin[@]}" "$PY" "$ANCHOR" speed --size "$size" --nc "$channels" --batch 64 --iters "$iterations" | field)"
    echo "$size $channels pytorch bf16 $("${pin[@]}" "$PY" "$ANCHOR" speed --size "$size" --nc "$channels" --batch 64 --iters "$iterations" --bf16 | field)"
  done
done

#!/usr/bin/env bash
# One row of README's remedy table: train 5 epochs on a prepared Fashion-MNIST folder with the given
# flags, generate 2,000 samples, `evaluate` them against the test folder, and (with a yardstick
# model, scripts/yardstick.py) measure the labelled FID.
#   scripts/remedies.sh NAME TRAIN_DATA TEST_DATA YARDSTICK_MODEL [train flags…]
set -euo pipefail
name=$1 train=$2 test=$3 model=$4; shift 4
B=${B:-.build/release/darkroom} OUT=${OUT:-remedies}
mkdir -p "$OUT"
"$B" train --data "$train" --out "$OUT/runs/$name" --epochs 5 --eval-every 0 "$@" > "$OUT/$name.train.log" 2>&1
"$B" generate --model "$OUT/runs/$name" --count 2000 --seed 0 --out "$OUT/gen/$name" > /dev/null
"$B" evaluate --model "$OUT/runs/$name" --data "$test" --count 2000 --json --out "$OUT/evaluation/$name" > "$OUT/$name.evaluate.json"
python3 scripts/yardstick.py measure --model "$model" --real "$test" --fake "$OUT/gen/$name" > "$OUT/$name.yardstick.json"

#!/usr/bin/env bash
# README's "Whether ADA helps": --augment ada against off on small folders, each run evaluated
# without labels (evaluate) and, for Fashion-MNIST, by the yardstick's FID.
#   scripts/ada-check.sh
# WORK (default ada-check) holds everything; B the darkroom binary; FMNIST a scripts/utility-fmnist.sh
# setup folder (its train.sqlite and test/); YARDSTICK a scripts/yardstick.py model; ICONS a dataset
# prepared as README's icon folder (empty: skip the icons); SEEDS the seeds (1 2 3); LONG=1 adds the
# 300-kimg runs on the first 1,000 (seeds 1 2).
set -euo pipefail
B=${B:-.build/release/darkroom} WORK=${WORK:-ada-check} FMNIST=${FMNIST:-fmnist-utility}
YARDSTICK=${YARDSTICK:-yardstick.pt} ICONS=${ICONS:-} SEEDS=${SEEDS:-1 2 3} LONG=${LONG:-0}
mkdir -p "$WORK"
one() { # NAME DATA TEST KIMG SEED AUGMENT [train flags…]
  local name=$1 data=$2 test=$3 kimg=$4 seed=$5 augment=$6; shift 6
  "$B" train --data "$data" --out "$WORK/runs/$name" --kimg "$kimg" --seed "$seed" --augment "$augment" --eval-every 0 "$@" \
    > "$WORK/$name.train.log" 2>&1
  "$B" evaluate --model "$WORK/runs/$name" --data "$test" --count 2000 --json --out "$WORK/evaluation/$name" > "$WORK/$name.evaluate.json"
}
fmnist() { # NAME IMAGES KIMG SEED AUGMENT
  local name=$1 n=$2 kimg=$3 seed=$4 augment=$5
  [ -d "$WORK/s$n" ] || "$B" prepare --db "$FMNIST/train.sqlite" --size 32 --channels 1 --limit "$n" --out "$WORK/s$n" > /dev/null
  one "$name" "$WORK/s$n" "$FMNIST/test" "$kimg" "$seed" "$augment"
  "$B" generate --model "$WORK/runs/$name" --count 2000 --seed 0 --out "$WORK/gen/$name" > /dev/null
  python3 scripts/yardstick.py measure --model "$YARDSTICK" --real "$FMNIST/test" --fake "$WORK/gen/$name" > "$WORK/$name.yardstick.json"
}
for n in 1000 5000; do
  for seed in $SEEDS; do
    for augment in ada off; do fmnist "f$n-$augment-s$seed" "$n" 100 "$seed" "$augment"; done
  done
done
if [ "$LONG" = 1 ]; then
  for seed in 1 2; do
    for augment in ada off; do fmnist "f1000-$augment-s$seed-300k" 1000 300 "$seed" "$augment"; done
  done
fi
if [ -n "$ICONS" ]; then
  for seed in 1 2; do
    for augment in ada off; do one "icons-$augment-s$seed" "$ICONS" "$ICONS" 60 "$seed" "$augment" --precision bf16; done
  done
fi

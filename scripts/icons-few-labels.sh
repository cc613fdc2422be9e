#!/usr/bin/env bash
# README's "A few labels on a real folder": Debian's icon themes (/usr/share/icons) labelled by
# context (the folder above an icon's file), 20 icons of each of six contexts labelled, the rest of
# those six held out as test labels, every other icon unlabelled.
#   scripts/icons-few-labels.sh                # WORK/{dataset,labels.csv,test-labels.csv}, then label,
#                                              # two generators (with the labeller, with the labels alone),
#                                              # their sets and utility reports
# WORK (default icons-few-labels) holds everything; B the darkroom binary; ROOT the folder;
# PRECISION the GANs' (README ran bf16); ALIGN label's --align (none; README's aligned rows: estimated);
# SEED label's --seed (0).
set -euo pipefail
B=${B:-.build/release/darkroom} WORK=${WORK:-icons-few-labels} ROOT=${ROOT:-/usr/share/icons}
PRECISION=${PRECISION:-fp32} ALIGN=${ALIGN:-none} SEED=${SEED:-0}
mkdir -p "$WORK"
"$B" catalog "$ROOT" --db "$WORK/icons.sqlite" > /dev/null
"$B" prepare --db "$WORK/icons.sqlite" --size 64 --channels 3 --out "$WORK/dataset" --drop-near-duplicates > /dev/null
python3 - "$WORK" <<'EOF'
import csv, random, sys
work = sys.argv[1]
contexts = ["actions", "status", "devices", "mimetypes", "places", "emotes"]
by_context = {c: [] for c in contexts}
for row in csv.DictReader(open(f"{work}/dataset/index.csv")):
    context = row["path"].split("/")[-2]
    if context in by_context:
        by_context[context].append(row["path"])
shuffle = random.Random(0)
with open(f"{work}/labels.csv", "w") as labels, open(f"{work}/test-labels.csv", "w") as test:
    labels.write("path,label\n")
    test.write("path,label\n")
    for context in contexts:
        paths = sorted(by_context[context])
        shuffle.shuffle(paths)
        labels.writelines(f"{p},{context}\n" for p in paths[:20])
        test.writelines(f"{p},{context}\n" for p in paths[20:])
EOF
"$B" label --data "$WORK/dataset" --labels "$WORK/labels.csv" --out "$WORK/all-labels.csv" --validation-fraction 0 \
  --test-labels "$WORK/test-labels.csv" --save-labeller "$WORK/labeller.safetensors" --steps 2000 \
  --align "$ALIGN" --seed "$SEED"
for run in labeller given; do
  extra=()
  [[ $run == labeller ]] && extra=(--labeller "$WORK/labeller.safetensors")
  "$B" train --data "$WORK/dataset" --labels "$WORK/labels.csv" "${extra[@]}" --preset quality --projection --kimg 60 \
    --precision "$PRECISION" --eval-every 0 --out "$WORK/run-$run"
  "$B" generate --model "$WORK/run-$run" --per-class 200 --out "$WORK/set-$run"
  "$B" utility --model "$WORK/run-$run" --labels "$WORK/labels.csv" --test-labels "$WORK/test-labels.csv" \
    --set "$WORK/set-$run" --repeats 3 --out "$WORK/utility-$run.json"
done

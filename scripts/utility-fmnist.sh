#!/usr/bin/env bash
# README's utility table: Fashion-MNIST at 32 px gray, labels for 1,000 of the 60,000 training
# images (the first 100 of each class, by class name), the 10,000 test images held out.
#   scripts/utility-fmnist.sh setup                  # WORK/{train,test} prepared, WORK/labels-1000.csv, WORK/test-labels.csv
#   scripts/utility-fmnist.sh label                  # WORK/all-labels.csv: darkroom label's FixMatch labels for the other 59,000,
#                                                    # and its classifier, WORK/labeller.safetensors (LABEL="…" adds label's flags)
#   scripts/utility-fmnist.sh run NAME [train flags…] # train --labels EPOCHS (5) epochs, then utility (UTILITY="…" adds its flags)
# WORK (default fmnist-utility) holds everything; B the darkroom binary. README's recipe (the
# earlier tables in Docs/utility-fmnist.md: the default LABEL and EPOCHS):
#   LABEL="--validation-fraction 0 --depth 2 --thresholds flexmatch" scripts/utility-fmnist.sh label
#   EPOCHS=15 UTILITY="--soft-labels --synthetic-share 0.75 --repeats 3" \
#     scripts/utility-fmnist.sh run NAME --preset quality --projection --labeller WORK/labeller.safetensors
# TRAIN_LABELS=all trains on WORK/all-labels.csv instead (the argmax labels of Docs/utility-fmnist.md's
# earlier tables); utility always trains its real-only classifier on the 1,000 given labels.
set -euo pipefail
B=${B:-.build/release/darkroom} WORK=${WORK:-fmnist-utility}
mkdir -p "$WORK"
case $1 in
setup)
  for split in train test; do
    "$B" datasets fashion-mnist --out "$WORK/dump-$split" --split "$split"
    "$B" catalog "$WORK/dump-$split/images" --db "$WORK/$split.sqlite" > /dev/null
    "$B" prepare --db "$WORK/$split.sqlite" --size 32 --channels 1 --out "$WORK/$split" > /dev/null
  done
  # Labels by class name; the dump's paths (relative to its images folder, the catalogue's root)
  # are the datasets' index.csv paths.
  python3 - "$WORK" <<'EOF'
import csv, sys
work = sys.argv[1]
for split, out, per_class in (("train", "labels-1000.csv", 100), ("test", "test-labels.csv", None)):
    prepared = {row["path"] for row in csv.DictReader(open(f"{work}/{split}/index.csv"))}
    taken, rows = {}, []
    for row in csv.DictReader(open(f"{work}/dump-{split}/labels.csv")):
        name = row["class_name"]
        if row["path"] in prepared and (per_class is None or taken.get(name, 0) < per_class):
            taken[name] = taken.get(name, 0) + 1
            rows.append((row["path"], name))
    with open(f"{work}/{out}", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    print(out, len(rows), "rows,", len(taken), "classes", file=sys.stderr)
EOF
  ;;
label)
  "$B" label --data "$WORK/train" --labels "$WORK/labels-1000.csv" --out "$WORK/all-labels.csv" --save-labeller "$WORK/labeller.safetensors" \
    --test-labels "$WORK/test-labels.csv" --test-data "$WORK/test" ${LABEL:-} --json > "$WORK/label.json"
  cat "$WORK/label.json"
  ;;
run)
  name=$2; shift 2
  labels="$WORK/labels-1000.csv"
  if [ "${TRAIN_LABELS:-}" = all ]; then labels="$WORK/all-labels.csv"; fi
  "$B" train --data "$WORK/train" --out "$WORK/runs/$name" --labels "$labels" --epochs "${EPOCHS:-5}" --eval-every 0 "$@" \
    > "$WORK/$name.train.log" 2>&1
  "$B" utility --model "$WORK/runs/$name" --labels "$WORK/labels-1000.csv" --test-labels "$WORK/test-labels.csv" \
    --test-data "$WORK/test" --json ${UTILITY:-} > "$WORK/$name${UTILITY_NAME:-}.utility.json" 2> "$WORK/$name${UTILITY_NAME:-}.utility.log"
  cat "$WORK/$name${UTILITY_NAME:-}.utility.json"
  ;;
esac

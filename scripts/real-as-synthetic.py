"""A perfect generator's set: real images in a `generate --per-class` folder, to bound what a better G could add.

`utility-check.py --set DIR` reads a folder of `darkroom generate --per-class`. This script writes
one of the same shape (DIR/images/<label>/NNNNNN.png, DIR/metadata.jsonl with `file_name`,
`label`, `source`, and `path`: the real image it is) from the unlabelled images of a prepared
dataset instead of G's, so a reader can be given what a generator that drew exactly the real
images would give. Each class's `--per-class` images are chosen from `darkroom label`'s output
CSV (`path,label,confidence,source`; rows with `source` "label", the given labels, are left out):

- `hardest`: as `generate --filter-keep hardest` chooses, the images the labeller is least sure
  of among those it gives at least `--floor` (0.5), folder = the labeller's class;
- `random`: at random among those the labeller calls the class, folder = the labeller's class;
- `truth`: at random among the images whose `--truth` label is the class, folder = that label
  (what a perfect labeller would give).

    python scripts/real-as-synthetic.py --data PREPARED --labels all-labels.csv --choose hardest --out DIR
        [--per-class 1000] [--floor 0.5] [--truth true-labels.csv] [--seed 0]

Only numpy and Pillow; gray or RGB images as prepared.
"""
import argparse, csv, json, os, random

import numpy as np
from PIL import Image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a darkroom prepare folder")
    p.add_argument("--labels", required=True, help="darkroom label's output CSV: path,label,confidence,source")
    p.add_argument("--choose", required=True, choices=["hardest", "random", "truth"])
    p.add_argument("--truth", help="path,label: every unlabelled image's true class (for --choose truth)")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--floor", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.choose == "truth" and not a.truth:
        p.error("--choose truth needs --truth")
    if os.path.exists(os.path.join(a.out, "metadata.jsonl")):
        raise SystemExit(f"{a.out}: already holds a set (metadata.jsonl); choose another --out")

    manifest = json.load(open(os.path.join(a.data, "dataset.json")))
    images = np.concatenate([np.load(os.path.join(a.data, s["file"])) for s in manifest["shards"]])
    with open(os.path.join(a.data, "index.csv")) as f:
        row_of = {r["path"]: i for i, r in enumerate(csv.DictReader(f))}
    pseudo = [r for r in csv.DictReader(open(a.labels)) if r.get("path") and r["source"] == "pseudo"]
    missing = [r["path"] for r in pseudo if r["path"] not in row_of]
    if missing:
        raise SystemExit(f"{a.labels}: {len(missing)} paths are not in {a.data}, the first {missing[0]}")
    classes = sorted({r["label"] for r in pseudo})
    rng = random.Random(a.seed)

    confidence = {r["path"]: float(r["confidence"]) for r in pseudo}
    if a.choose == "truth":
        truth = {r["path"]: r["label"] for r in csv.DictReader(open(a.truth))}
        unknown = [p for p in confidence if p not in truth]
        if unknown:
            raise SystemExit(f"{a.truth}: {len(unknown)} unlabelled images have no label, the first {unknown[0]}")
        class_of = truth
    else:
        class_of = {r["path"]: r["label"] for r in pseudo}
    chosen = {}
    for c in classes:
        pool = [r["path"] for r in pseudo if class_of[r["path"]] == c]
        if len(pool) < a.per_class:
            raise SystemExit(f"{a.labels}: class {c!r} has {len(pool)} images, fewer than --per-class {a.per_class}")
        if a.choose == "hardest":
            agreeing = sorted((p for p in pool if confidence[p] >= a.floor), key=lambda p: confidence[p])
            rest = sorted((p for p in pool if confidence[p] < a.floor), key=lambda p: -confidence[p])
            chosen[c] = (agreeing + rest)[:a.per_class]
        else:
            chosen[c] = rng.sample(pool, a.per_class)

    rows = []
    for c in classes:
        # as generate names a class folder: "/" replaced, a leading "." prefixed
        name = c.replace("/", "_").replace("\0", "_")
        folder = "images/" + ("_" + name if name.startswith(".") or not name else name)
        os.makedirs(os.path.join(a.out, folder), exist_ok=True)
        for j, path in enumerate(chosen[c]):
            file_name = f"{folder}/{j:06d}.png"
            pixels = images[row_of[path]]
            Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(os.path.join(a.out, file_name))
            rows.append({"file_name": file_name, "label": c, "source": "real-as-synthetic", "path": path})
    # metadata.jsonl last, as generate writes it: its presence marks a finished folder.
    with open(os.path.join(a.out, "metadata.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"wrote {len(rows)} real images ({a.choose}) to {a.out}")


if __name__ == "__main__":
    main()

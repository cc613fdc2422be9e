"""An independent read of `darkroom generate --per-class` sets: PyTorch, nothing of Darkroom's engine.

`darkroom utility` judges a set with Darkroom's own classifier recipe. This script judges it the way
a user's own code would: the exported folder read as an `ImageFolder` (each image's class its
folder's), concatenated with the labelled real images, and a small CNN of its own (after the
PyTorch MNIST example: conv 3x3 32 + max-pool, conv 3x3 64 + max-pool, dropout 0.25, fc 128,
dropout 0.5, fc) trained with Adam 1e-3, batch 64, for the same fixed number of steps on every
training set (6,000: 35 passes over 11,000 images; at 2,000, real + synthetic read 1.2-1.5 points
lower on the two generators tried, the 1,000 real images alone 0.2 lower), no augmentation unless `--augment`. It
reports test accuracy on held-out labelled real images for the real images alone, real +
synthetic, and synthetic alone, each over `--seeds` seeds.

    python scripts/utility-check.py --data PREPARED --labels labels-1000.csv \
        --test-data TEST_PREPARED --test-labels test-labels.csv --set SYNTHETIC [--set ...] \
        [--share 0.5] [--soft-labels --model RUN] [--augment] [--seeds 3] [--steps 6000] [--out result.json]

`--share F` draws F of each batch from the synthetic images and the rest from the real ones
(default: uniform over the concatenation, so with 10,000 synthetic beside 1,000 real, 91%).
`--soft-labels` trains on each synthetic row's `labeller_probabilities` (in the class order of
RUN's `config.json`) instead of its folder's class. `--augment` gives every training image a
random horizontal flip and a random shift of up to 2 pixels (the borders filled with black), the
most common recipe a user would add, to see whether the set still helps a classifier that augments.
"""
import argparse, csv, json, os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load_prepared(directory):
    """A `darkroom prepare` folder: uint8 NHWC images and each row's path."""
    manifest = json.load(open(os.path.join(directory, "dataset.json")))
    images = np.concatenate([np.load(os.path.join(directory, s["file"])) for s in manifest["shards"]])
    with open(os.path.join(directory, "index.csv")) as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    return images, paths


def labelled(directory, labels_csv):
    images, paths = load_prepared(directory)
    row_of = {p: i for i, p in enumerate(paths)}
    rows = list(csv.DictReader(open(labels_csv)))
    missing = [r["path"] for r in rows if r["path"] not in row_of]
    if missing:
        raise SystemExit(f"{labels_csv}: {len(missing)} paths are not in {directory}, the first {missing[0]}")
    return np.stack([images[row_of[r["path"]]] for r in rows]), [r["label"] for r in rows]


def load_set(directory):
    """A `generate --per-class` folder, in metadata order: images, folder labels, labeller probabilities."""
    rows = [json.loads(line) for line in open(os.path.join(directory, "metadata.jsonl"))]
    images = np.stack([np.asarray(Image.open(os.path.join(directory, r["file_name"]))) for r in rows])
    images = images[..., None] if images.ndim == 3 else images
    return images, [r["label"] for r in rows], [r.get("labeller_probabilities") for r in rows]


def tensor(images):
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2).contiguous()


class SmallCNN(nn.Module):
    """[N, C, 32, 32] → [N, classes] (any size divisible by 4)."""

    def __init__(self, channels, size, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, 1, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1, 1)
        self.fc1 = nn.Linear(64 * (size // 4) ** 2, 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(x, 0.25, self.training)
        x = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), 0.5, self.training)
        return self.fc2(x)


def flip_and_shift(batch, rng, shift=2):
    """Each image mirrored at random and moved by up to `shift` pixels; what moves in is black (-1)."""
    n, _, h, w = batch.shape
    flip = torch.from_numpy(rng.random(n) < 0.5)
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    padded = F.pad(batch, (shift,) * 4, value=-1.0)
    dy, dx = rng.integers(0, 2 * shift + 1, n), rng.integers(0, 2 * shift + 1, n)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def fit_and_test(x, targets, test_x, test_y, seed, steps, real=None, share=None, augment=False):
    """targets: [N, classes] probabilities. With `share`, the first `real` rows are real and that
    fraction of each batch is drawn from the rest; otherwise batches walk seeded permutations."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SmallCNN(x.shape[1], x.shape[2], targets.shape[1])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    order, at = rng.permutation(len(x)), 0
    net.train()
    for _ in range(steps):
        if share is not None:
            k = int(round(64 * share))
            idx = np.concatenate([rng.integers(0, real, 64 - k), rng.integers(real, len(x), k)])
        else:
            if at + 64 > len(order):
                order, at = rng.permutation(len(x)), 0
            idx = order[at:at + 64]
            at += 64
        idx = torch.from_numpy(idx)
        batch = flip_and_shift(x[idx], rng) if augment else x[idx]
        loss = -(targets[idx] * F.log_softmax(net(batch), 1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(test_x[i:i + 1000]).argmax(1) for i in range(0, len(test_x), 1000)])
    return (predicted == test_y).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--test-data", required=True)
    p.add_argument("--test-labels", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--share", type=float)
    p.add_argument("--soft-labels", action="store_true")
    p.add_argument("--model", help="the run the sets came from (its class order, for --soft-labels)")
    p.add_argument("--augment", action="store_true", help="a random flip and shift of up to 2 pixels for every training image")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--skip-real-only", action="store_true")
    p.add_argument("--skip-synthetic-only", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    a = p.parse_args()
    if a.soft_labels and not a.model:
        p.error("--soft-labels needs --model RUN for the class order of labeller_probabilities")
    if a.share is not None and not 0 < a.share < 1:
        p.error("--share must be between 0 and 1")
    torch.set_num_threads(a.threads)

    real_x, real_labels = labelled(a.data, a.labels)
    test_x, test_labels = labelled(a.test_data, a.test_labels)
    classes = sorted(set(real_labels))
    if a.model:
        classes = json.load(open(os.path.join(a.model, "config.json")))["model"]["classes"]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(real_labels + test_labels) - set(classes))
    if unknown:
        raise SystemExit(f"labels {unknown} are not among the classes {classes}")
    eye = torch.eye(len(classes))
    R, RT = tensor(real_x), eye[[index[c] for c in real_labels]]
    T, TY = tensor(test_x), torch.tensor([index[c] for c in test_labels])

    mean = lambda values: 100 * float(np.mean(values)) if values else None
    result = {"recipe": {"classifier": "small-cnn", "optimizer": "adam 1e-3", "batch": 64, "steps": a.steps,
                         "share": a.share, "soft_labels": a.soft_labels, "augment": a.augment},
              "classes": classes, "test_count": len(test_labels), "real_count": len(real_labels),
              "real_only_runs": [], "sets": {}}
    for seed in range(0 if a.skip_real_only else a.seeds):
        result["real_only_runs"].append(fit_and_test(R, RT, T, TY, seed, a.steps, augment=a.augment))
        print(f"real only, seed {seed}: {result['real_only_runs'][-1]:.4f}", flush=True)
    result["real_only"] = mean(result["real_only_runs"])
    for directory in a.set:
        images, labels, probabilities = load_set(directory)
        if a.soft_labels:
            if any(q is None or len(q) != len(classes) for q in probabilities):
                raise SystemExit(f"{directory}/metadata.jsonl: a row has no labeller_probabilities for {len(classes)} classes")
            ST = torch.tensor(probabilities, dtype=torch.float32)
        else:
            ST = eye[[index[c] for c in labels]]
        S = tensor(images)
        both, both_targets = torch.cat([R, S]), torch.cat([RT, ST])
        entry = {"synthetic_count": len(labels), "real_plus_synthetic_runs": [], "synthetic_only_runs": []}
        for seed in range(a.seeds):
            entry["real_plus_synthetic_runs"].append(fit_and_test(both, both_targets, T, TY, seed, a.steps, len(R), a.share, a.augment))
            if not a.skip_synthetic_only:
                entry["synthetic_only_runs"].append(fit_and_test(S, ST, T, TY, seed, a.steps, augment=a.augment))
            print(f"{directory}, seed {seed}: real + synthetic {entry['real_plus_synthetic_runs'][-1]:.4f}"
                  + (f", synthetic only {entry['synthetic_only_runs'][-1]:.4f}" if entry["synthetic_only_runs"] else ""), flush=True)
        entry["real_plus_synthetic"] = mean(entry["real_plus_synthetic_runs"])
        entry["synthetic_only"] = mean(entry["synthetic_only_runs"])
        if result["real_only"] is not None:
            entry["lift"] = entry["real_plus_synthetic"] - result["real_only"]
        result["sets"][directory] = entry
        print(json.dumps({directory: {k: v for k, v in entry.items() if not k.endswith("_runs")}}), flush=True)
    text = json.dumps(result, indent=1)
    if a.out:
        open(a.out, "w").write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()

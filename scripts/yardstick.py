"""A labelled yardstick for `darkroom evaluate`, independent of Darkroom's engine (PyTorch).

Trains a classifier on Fashion-MNIST's labels, then measures generated images by the Fréchet
distance in its penultimate features (an FID whose network knows the data) and by how confidently
it classifies them (an Inception-score analogue). README's "Evaluation" section ranks generators
by these figures and by Darkroom's label-free ones.

    python scripts/yardstick.py train --data PREPARED --labels labels.csv --test PREPARED --test-labels labels.csv --out yardstick.pt
    python scripts/yardstick.py measure --model yardstick.pt --real PREPARED --fake GENERATED_DIR [GENERATED_DIR ...]

PREPARED is a `darkroom prepare` folder (shards + index.csv); GENERATED_DIR a `darkroom generate` output.
"""
import argparse, csv, glob, json, os, sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load_prepared(directory):
    """uint8 NHWC shards → float NCHW in [-1, 1], and each row's path."""
    manifest = json.load(open(os.path.join(directory, "dataset.json")))
    arrays = [np.load(os.path.join(directory, shard["file"])) for shard in manifest["shards"]]
    images = np.concatenate(arrays).astype(np.float32) / 127.5 - 1
    with open(os.path.join(directory, "index.csv")) as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), paths


def load_generated(directory):
    files = sorted(glob.glob(os.path.join(directory, "images", "[0-9]*.png")))
    images = np.stack([np.asarray(Image.open(f)) for f in files]).astype(np.float32) / 127.5 - 1
    if images.ndim == 3:
        images = images[..., None]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def labels_for(paths, labels_csv):
    with open(labels_csv) as f:
        label_of = {row["path"]: int(row["label"]) for row in csv.DictReader(f)}
    return torch.tensor([label_of[p] for p in paths])


class Classifier(nn.Module):
    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(128, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def embed(self, x):
        return self.features(self.conv(x))

    def forward(self, x):
        return self.head(self.embed(x))


@torch.no_grad()
def batched(fn, x, batch=1000):
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def frechet(a, b):
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(ca)
    root = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root @ cb @ root).clamp(min=0).sqrt().sum()
    return float(mu @ mu + ca.trace() + cb.trace() - 2 * middle)


@torch.no_grad()
def recalibrate(model, x):
    """BatchNorm statistics as the average over the whole training set; the running averages
    Adam's last steps leave behind put test accuracy 15 points below the batch statistics."""
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None
    model.train()
    for i in range(0, len(x), 1000):
        model(x[i:i + 1000])
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = 0.1
    model.eval()


def train(args):
    torch.manual_seed(0)
    x, paths = load_prepared(args.data)
    y = labels_for(paths, args.labels)
    xt, test_paths = load_prepared(args.test)
    yt = labels_for(test_paths, args.test_labels)
    model = Classifier(x.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(args.epochs):
        # The last two epochs at a tenth of the rate: a stable final model, not the last step's luck.
        for group in optimiser.param_groups:
            group["lr"] = 1e-3 if epoch < args.epochs - 2 else 1e-4
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            index = order[i:i + 128]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        recalibrate(model, x)
        accuracy = (batched(model, xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}", file=sys.stderr)
    torch.save({"state": model.state_dict(), "channels": x.shape[1], "test_accuracy": accuracy}, args.out)


def measure(args):
    saved = torch.load(args.model)
    model = Classifier(saved["channels"])
    model.load_state_dict(saved["state"])
    model.eval()
    real, _ = load_prepared(args.real)
    real_features = batched(model.embed, real)
    for directory in args.fake:
        fake = load_generated(directory)
        features = batched(model.embed, fake)
        probabilities = batched(model, fake).softmax(1)
        marginal = probabilities.mean(0)
        # Inception-score analogue: confident per-image classes, spread over all classes.
        score = torch.exp((probabilities * (probabilities.clamp(min=1e-12).log() - marginal.log())).sum(1).mean()).item()
        print(json.dumps({"fake": directory, "count": len(fake), "yardstick_fid": round(frechet(real_features, features), 3),
                          "class_score": round(score, 3), "class_histogram": [round(v, 3) for v in marginal.tolist()]}))
        sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--labels", required=True)
    t.add_argument("--test", required=True)
    t.add_argument("--test-labels", required=True)
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--out", required=True)
    m = commands.add_parser("measure")
    m.add_argument("--model", required=True)
    m.add_argument("--real", required=True)
    m.add_argument("--fake", nargs="+", required=True)
    args = parser.parse_args()
    train(args) if args.command == "train" else measure(args)

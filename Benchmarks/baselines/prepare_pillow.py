"""The Python baseline for `darkroom bench prepare`: the same work with Pillow and NumPy.

Reads the usable images from a Darkroom catalogue, then for each: open, convert to L or RGB,
centre-crop to a square, resize with antialiased bilinear (torchvision's Resize + CenterCrop),
stack into uint8 arrays and np.save them as shards of 65,536. Work is split over --jobs processes.
--decode fast asks libjpeg for a DCT-scaled JPEG no smaller than the target (Image.draft), as
Darkroom's `prepare --decode fast`; full decodes every pixel (the default, as torchvision users do).

    python prepare_pillow.py DB --size 32 --channels 1 [--jobs 2] [--decode full|fast]
"""
import argparse
import json
import os
import sqlite3
import tempfile
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageOps

SIZE = CHANNELS = FAST = None


def load(path):
    with Image.open(path) as image:
        if FAST and image.format == "JPEG":
            image.draft("L" if image.mode == "L" else "RGB", (SIZE, SIZE))
        image = ImageOps.exif_transpose(image)
        image = image.convert("L" if CHANNELS == 1 else "RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8).reshape(SIZE, SIZE, CHANNELS)


def init(size, channels, fast):
    global SIZE, CHANNELS, FAST
    SIZE, CHANNELS, FAST = size, channels, fast


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--decode", choices=["full", "fast"], default="full")
    args = parser.parse_args()
    connection = sqlite3.connect(args.db)
    rows = connection.execute(
        "SELECT roots.path || '/' || images.path FROM images JOIN roots ON roots.id = images.root_id "
        "WHERE status = 'ok' AND images.id = exact_group AND low_information = 0 ORDER BY images.id").fetchall()
    paths = [row[0] for row in rows]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, Pool(args.jobs, initializer=init, initargs=(args.size, args.channels, args.decode == "fast")) as pool:
        per_shard = 65536
        for shard, first in enumerate(range(0, len(paths), per_shard)):
            samples = pool.map(load, paths[first:first + per_shard], chunksize=256)
            np.save(os.path.join(out, f"shard-{shard:05d}.npy"), np.stack(samples))
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(paths), "jobs": args.jobs, "decode": args.decode, "seconds": seconds, "images_per_s": len(paths) / seconds}))


if __name__ == "__main__":
    main()

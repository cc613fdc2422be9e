"""The Python baseline for `darkroom bench catalog`: the same work with Pillow, hashlib and imagehash.

For every file under ROOT: read the bytes, SHA-256 them, open and fully decode the image (verify),
convert to gray, compute imagehash.phash and the mean/std of the pixels. Work is split over
--jobs processes, as Darkroom splits it over --jobs threads. Prints JSON with files_per_s.

    python catalog_pillow.py ROOT [--jobs 2]
"""
import argparse
import hashlib
import json
import os
import time
from multiprocessing import Pool

import imagehash
import numpy as np
from PIL import Image


def inspect(path):
    with open(path, "rb") as handle:
        data = handle.read()
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
            pixels = np.asarray(gray, dtype=np.float64)
            return digest, str(imagehash.phash(gray)), float(pixels.mean()), float(pixels.std()), "ok"
    except Exception as error:  # every failure is a status, as in Darkroom
        return digest, None, None, None, f"error: {error}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    start = time.perf_counter()
    paths = [os.path.join(folder, name) for folder, _, names in os.walk(args.root) for name in names]
    with Pool(args.jobs) as pool:
        results = pool.map(inspect, paths, chunksize=256)
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(results), "jobs": args.jobs, "seconds": seconds, "files_per_s": len(results) / seconds}))


if __name__ == "__main__":
    main()

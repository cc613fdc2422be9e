"""The Python baseline for `darkroom bench catalog`: the same work with Pillow, hashlib and imagehash.

For every file under ROOT: read the bytes, SHA-256 them, open and fully decode the image (verify),
convert to gray, compute imagehash.phash and the mean/std of the pixels. Work is split over
--jobs processes, as Darkroom splits it over --jobs threads. Prints JSON with files_per_s.

With --full it also does the rest of what `darkroom catalog` does, the way a careful Python
programmer would: rows into SQLite (sqlite3, WAL, one transaction per 512 files, written while the
pool works), exact groups by hash, and near-duplicate pairs within 4 bits by the same multi-index
hashing (5 blocks, each bucket's pairs compared at once in NumPy), stored in a table. files_per_s then covers all of it.

    python catalog_pillow.py ROOT [--jobs 2] [--full]
"""
import argparse
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
from collections import defaultdict
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


def inspect_full(path):
    info = os.stat(path)
    digest, phash, mean, std, status = inspect(path)
    return path, info.st_size, info.st_mtime_ns, digest, phash, mean, std, status


def popcount64(values):
    """Bits set in each uint64 of a NumPy array."""
    return np.unpackbits(values.view(np.uint8).reshape(values.shape + (8,)), axis=-1).sum(axis=-1)


def near_pairs(hashes, threshold=4):
    """Multi-index hashing: split 64 bits into threshold+1 blocks; near hashes share one exactly.
    Buckets are compared with NumPy (all pairs of a bucket at once)."""
    blocks = threshold + 1
    widths = [64 // blocks + (1 if b < 64 % blocks else 0) for b in range(blocks)]
    values = np.array(hashes, dtype=np.uint64)
    found = set()
    start = 0
    for width in widths:
        keys = (values >> np.uint64(start)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(np.diff(keys[order])) + 1
        for members in np.split(order, boundaries):
            if len(members) < 2:
                continue
            distances = popcount64(values[members][:, None] ^ values[members][None, :])
            a, b = np.nonzero(np.triu(distances <= threshold, k=1))
            found.update(zip(members[a].tolist(), members[b].tolist(), distances[a, b].tolist()))
        start += width
    return sorted((min(a, b), max(a, b), d) for a, b, d in found)


def full(root, jobs):
    directory = tempfile.mkdtemp()
    db = sqlite3.connect(os.path.join(directory, "baseline.sqlite"))
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("""CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT UNIQUE, size_bytes INTEGER, mtime_ns INTEGER,
                  sha256 TEXT, phash TEXT, mean REAL, std REAL, status TEXT, exact_group INTEGER)""")
    db.execute("CREATE TABLE near_pairs (image_a INTEGER, image_b INTEGER, distance INTEGER, PRIMARY KEY (image_a, image_b)) WITHOUT ROWID")
    paths = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in sorted(names)]
    with Pool(jobs) as pool:
        batch = []
        for row in pool.imap(inspect_full, paths, chunksize=256):
            batch.append(row)
            if len(batch) == 512:
                with db:
                    db.executemany("INSERT INTO images (path, size_bytes, mtime_ns, sha256, phash, mean, std, status) VALUES (?,?,?,?,?,?,?,?)", batch)
                batch = []
        with db:
            db.executemany("INSERT INTO images (path, size_bytes, mtime_ns, sha256, phash, mean, std, status) VALUES (?,?,?,?,?,?,?,?)", batch)
    with db:
        first = {}
        rows = db.execute("SELECT id, sha256, phash FROM images WHERE status = 'ok' ORDER BY id").fetchall()
        groups = []
        for image_id, digest, _ in rows:
            group = first.setdefault(digest, image_id)
            groups.append((group, image_id))
        db.executemany("UPDATE images SET exact_group = ? WHERE id = ?", groups)
        candidates = [(image_id, int(phash, 16)) for image_id, digest, phash in rows if first[digest] == image_id]
        pairs = near_pairs([value for _, value in candidates])
        db.executemany("INSERT INTO near_pairs VALUES (?, ?, ?)", [(candidates[a][0], candidates[b][0], d) for a, b, d in pairs])
    db.close()
    return len(paths), len(pairs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--full", action="store_true", help="also store rows in SQLite and find exact and near duplicates")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.full:
        files, pairs = full(args.root, args.jobs)
        seconds = time.perf_counter() - start
        print(json.dumps({"files": files, "near_pairs": pairs, "jobs": args.jobs, "full": True, "seconds": seconds, "files_per_s": files / seconds}))
        return
    paths = [os.path.join(folder, name) for folder, _, names in os.walk(args.root) for name in names]
    with Pool(args.jobs) as pool:
        results = pool.map(inspect, paths, chunksize=256)
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(results), "jobs": args.jobs, "seconds": seconds, "files_per_s": len(results) / seconds}))


if __name__ == "__main__":
    main()

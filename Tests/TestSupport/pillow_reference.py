"""Reference outputs from Pillow and NumPy for Darkroom's tests.

    pillow_reference.py png-suite DIR     PNGs of every colour type, bit depth and interlace,
                                          written by hand (not by Darkroom), with Pillow's RGBA
                                          decode of each beside it as NAME.rgba
    pillow_reference.py jpeg-suite DIR    JPEGs written by Pillow (gray, RGB, progressive, CMYK,
                                          EXIF orientations 1-8), with Pillow's decode as NAME.rgb
                                          (after exif_transpose)
    pillow_reference.py resize IN OUT W H FILTER   Pillow's resize of an 8-bit PNG, raw bytes to OUT
    pillow_reference.py phash IN...       imagehash.phash of each file, one hex per line
    pillow_reference.py prepare-suite DIR SIZE   images well above SIZE (JPEG baseline 4:2:0 and
                                          4:4:4, progressive, odd sizes, EXIF-rotated, gray, with an
                                          ICC profile; PNG 8- and 16-bit), each with Pillow's prepared
                                          sample in both modes: NAME.full (exif_transpose, convert,
                                          centre crop, BILINEAR resize) and NAME.fast (the same after
                                          Image.draft to no less than SIZE)
"""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(values, bit_depth):
    """values: 1-D array of samples of a row."""
    if bit_depth == 16:
        return values.astype(">u2").tobytes()
    if bit_depth == 8:
        return values.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(values), per_byte):
        byte = 0
        group = values[i:i + per_byte]
        for j in range(per_byte):
            byte <<= bit_depth
            if j < len(group):
                byte |= int(group[j])
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bit_depth, interlace=False, palette=None, trns=None):
    """samples: (H, W, C) array of raw sample values (palette indices for type 3)."""
    height, width, _ = samples.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw.append(0)  # filter type None
            raw += pack_row(row.reshape(-1), bit_depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def png_suite(directory):
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    width, height = 13, 9
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    depths = {0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]}
    names = []
    for color_type, bit_depths in depths.items():
        for bit_depth in bit_depths:
            for interlace in (False, True):
                top = (1 << bit_depth) - 1
                palette = trns = None
                if color_type == 3:
                    entries = 1 << bit_depth
                    palette = rng.integers(0, 256, size=(entries, 3))
                    trns = bytes(rng.integers(0, 256, size=min(entries, 5)).astype(np.uint8))
                samples = rng.integers(0, top + 1, size=(height, width, channels[color_type]))
                name = f"type{color_type}-depth{bit_depth}{'-interlaced' if interlace else ''}"
                write_png(out / f"{name}.png", samples, color_type, bit_depth, interlace, palette, trns)
                names.append(name)
    # Gray and RGB with a tRNS colour key.
    samples = rng.integers(0, 256, size=(height, width, 1))
    samples[0, 0, 0] = 17
    write_png(out / "type0-depth8-trns.png", samples, 0, 8, trns=struct.pack(">H", 17))
    names.append("type0-depth8-trns")
    samples = rng.integers(0, 256, size=(height, width, 3))
    samples[1, 2] = [1, 2, 3]
    write_png(out / "type2-depth8-trns.png", samples, 2, 8, trns=struct.pack(">HHH", 1, 2, 3))
    names.append("type2-depth8-trns")
    for name in names:
        image = Image.open(out / f"{name}.png")
        if image.mode in ("I;16", "I;16B", "I"):
            continue  # Pillow keeps 16-bit gray as integers; no 8-bit reference
        (out / f"{name}.rgba").write_bytes(image.convert("RGBA").tobytes())
        print(name)


def jpeg_suite(directory):
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:40, 0:56]
    rgb = np.stack([x * 4, y * 6, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    rgb[10:20, 5:15] = [200, 30, 90]
    base = Image.fromarray(rgb, "RGB")
    cases = {
        "rgb": (base, {}),
        "gray": (base.convert("L"), {}),
        "progressive": (base, {"progressive": True}),
        "cmyk": (base.convert("CMYK"), {}),
    }
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        cases[f"orientation{orientation}"] = (base, {"exif": exif.tobytes()})
    for name, (image, options) in cases.items():
        path = out / f"{name}.jpg"
        image.save(path, quality=92, **options)
        decoded = ImageOps.exif_transpose(Image.open(path))
        decoded = decoded.convert("L" if decoded.mode == "L" else "RGB")
        (out / f"{name}.{'gray' if decoded.mode == 'L' else 'rgb'}").write_bytes(decoded.tobytes())
        print(name, decoded.width, decoded.height, decoded.mode)


def bombs(directory):
    """Decompression bombs: a tiny PNG declaring 100,000 x 100,000 pixels, and a valid small PNG
    whose zTXt chunk inflates to 200 MB."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    row = b"\x00" + b"\x00" * 100_000
    huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    huge += chunk(b"IDAT", zlib.compress(row * 4)) + chunk(b"IEND", b"")
    (out / "huge-dimensions.png").write_bytes(huge)
    samples = np.zeros((8, 8, 1), dtype=np.uint8)
    write_png(out / "plain.png", samples, 0, 8)
    data = (out / "plain.png").read_bytes()
    bomb = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * 200_000_000, 9))
    (out / "ztxt-bomb.png").write_bytes(data[:33] + bomb + data[33:])
    print("huge-dimensions.png ztxt-bomb.png")


def photo(width, height, seed):
    """Photo-like content: smooth gradients, sharp edges and fine texture, so both decode paths
    and the resize have real work to do."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 100 * np.sin(x / (width / 5.3)) * np.cos(y / (height / 3.1))
    g = 255 * x / width
    b = 255 * (0.5 + 0.5 * np.sin((x + 2 * y) / 7.0))
    image = np.stack([r, g, b], axis=-1)
    for _ in range(6):
        cx, cy, radius = rng.integers(0, width), rng.integers(0, height), rng.integers(10, max(11, min(width, height) // 4))
        image[(x - cx) ** 2 + (y - cy) ** 2 < radius ** 2] = rng.integers(0, 256, 3)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def prepared(path, size, fast):
    image = Image.open(path)
    mode = "L" if image.mode in ("L", "I;16", "I") else "RGB"
    if fast and image.format == "JPEG":
        image.draft(image.mode if image.mode == "L" else "RGB", (size, size))
    image = ImageOps.exif_transpose(image)
    image = image.convert(mode)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)


def prepare_suite(directory, size):
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    size = int(size)
    jpegs = {
        "baseline420": (photo(640, 480, 1), {"subsampling": 2}),
        "baseline444": (photo(640, 480, 2), {"subsampling": 0}),
        "progressive": (photo(800, 600, 3), {"progressive": True}),
        "odd": (photo(517, 389, 4), {}),
        "tall": (photo(301, 703, 5), {}),
        "barely": (photo(2 * size + 3, 2 * size + 1, 6), {}),
        "icc": (photo(512, 384, 7), {"icc_profile": b"\0" * 128 + b"acsp" + bytes(range(256)) * 2}),
        "gray": (photo(600, 450, 8)[:, :, 1], {}),
    }
    for orientation in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        jpegs[f"rotated{orientation}"] = (photo(640, 400, 10 + orientation), {"exif": exif.tobytes()})
    for name, (pixels, options) in jpegs.items():
        Image.fromarray(pixels).save(out / f"{name}.jpg", quality=90, **options)
    Image.fromarray(photo(300, 220, 20)).save(out / "png8.png")
    Image.fromarray(photo(300, 220, 21)[:, :, 0]).save(out / "gray8.png")
    wide = photo(280, 200, 22).astype(np.uint16) * 257 + np.random.default_rng(5).integers(0, 257, (200, 280, 3)).astype(np.uint16)
    write_png(out / "rgb16.png", wide, 2, 16)
    for path in sorted(out.glob("*.*")):
        if path.suffix not in (".jpg", ".png"):
            continue
        for fast in (False, True):
            sample = prepared(path, size, fast)
            (out / f"{path.stem}.{'fast' if fast else 'full'}").write_bytes(sample.tobytes())
        print(path.name, "L" if sample.mode == "L" else "RGB")


FILTERS = {"bilinear": Image.BILINEAR, "lanczos": Image.LANCZOS, "box": Image.BOX}


def resize(source, destination, width, height, filter_name):
    image = Image.open(source)
    Path(destination).write_bytes(image.resize((int(width), int(height)), FILTERS[filter_name]).tobytes())


def phash(paths):
    """imagehash.phash, spelled out: DCT-II along axis 0 then 1 (scipy.fftpack's unnormalised form)."""
    n = 32
    k = np.arange(n)[:, None]
    basis = 2 * np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("L").resize((n, n), Image.LANCZOS), dtype=np.float64)
        dct = (basis @ pixels) @ basis.T
        low = dct[:8, :8]
        bits = (low > np.median(low)).flatten()
        print(f"{int(''.join('1' if b else '0' for b in bits), 2):016x}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"png-suite": png_suite, "jpeg-suite": jpeg_suite, "bombs": bombs, "resize": resize, "phash": lambda *p: phash(p),
     "prepare-suite": prepare_suite}[command](*args)

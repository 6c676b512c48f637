#!/usr/bin/python3
"""Writes the fuzzers' seed inputs (small valid files) and hand-made hostile variants of them
("regress-*", which decode_image must refuse) into tests/fuzz/corpus/. Run once by hand (Debian's
python3-pil and numpy); the outputs are committed with what the fuzzers found.

    /usr/bin/python3 tests/fuzz/make_seeds.py
"""
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(array, color_type, bit_depth, interlace=0):
    h, w = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"

    def rows(a):
        return b"".join(b"\x00" + a[y].astype(dtype).tobytes() for y in range(a.shape[0]))

    if interlace:  # Adam7: seven reduced images, each with its own filtered rows
        raw = b"".join(rows(array[y0::dy, x0::dx]) for x0, y0, dx, dy in ADAM7 if x0 < w and y0 < h)
    else:
        raw = rows(array)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def pil_bytes(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def image_seeds():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(16, 16, 4)).astype(np.uint8)
    a16 = rng.integers(0, 65536, size=(8, 8, 4)).astype(np.uint16)
    rgb = Image.fromarray(a[..., :3], "RGB")
    return {
        "seed-grey-16x16.jpg": pil_bytes(Image.fromarray(a[..., 0], "L"), "JPEG", quality=80),
        "seed-rgb-16x16.jpg": pil_bytes(rgb, "JPEG", quality=80),
        "seed-progressive-16x16.jpg": pil_bytes(rgb, "JPEG", quality=80, progressive=True),
        "seed-grey8-8x8.png": pil_bytes(Image.fromarray(a[:8, :8, 0], "L"), "PNG"),
        "seed-grey16-8x8.png": png(a16[..., 0], 0, 16),
        "seed-grey-alpha-8x8.png": png(a[:8, :8, :2], 4, 8),
        "seed-rgb16-8x8.png": png(a16[..., :3], 2, 16),
        "seed-rgba-8x8.png": pil_bytes(Image.fromarray(a[:8, :8], "RGBA"), "PNG"),
        "seed-palette-8x8.png": pil_bytes(Image.fromarray(a[:8, :8, :3], "RGB").quantize(8), "PNG"),
        "seed-bilevel-8x8.png": pil_bytes(Image.fromarray(a[:8, :8, 0] > 127), "PNG"),
        "seed-interlaced-8x8.png": png(a[:8, :8, :3], 2, 8, interlace=1),
    }


def image_regressions(seeds):
    """Hostile variants of the seeds, each of which decode_image must refuse (not crash on)."""
    grey_png, jpeg = seeds["seed-grey8-8x8.png"], seeds["seed-grey-16x16.jpg"]

    def with_ihdr_size(png_bytes, width, height):
        ihdr = png_bytes[12:16] + struct.pack(">II", width, height) + png_bytes[24:29]
        return png_bytes[:8] + png_bytes[8:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF) + png_bytes[33:]

    sof = jpeg.index(b"\xff\xc0")

    def with_sof_size(width, height):
        return jpeg[:sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9:]

    sos = jpeg.index(b"\xff\xda")
    sos_length = struct.unpack(">H", jpeg[sos + 2:sos + 4])[0]
    scan = jpeg[sos:sos + 2 + sos_length] + b"\x00"  # a scan header and one byte of data
    return {
        "regress-png-truncated-idat.png": grey_png[:-20],
        "regress-png-no-iend.png": grey_png[:-12],
        "regress-png-lying-height.png": with_ihdr_size(grey_png, 8, 9),
        "regress-png-huge-declared.png": with_ihdr_size(grey_png, 100000, 100000),
        "regress-png-16384-square-tiny-file.png": with_ihdr_size(grey_png, 16384, 16384),
        "regress-png-zero-width.png": with_ihdr_size(grey_png, 0, 8),
        "regress-jpeg-no-eoi.jpg": jpeg[:-2],
        "regress-jpeg-cut-in-scan.jpg": jpeg[: (sos + len(jpeg)) // 2],
        "regress-jpeg-huge-declared.jpg": with_sof_size(65535, 65535),
        "regress-jpeg-zero-height.jpg": with_sof_size(16, 0),
        "regress-jpeg-101-scans.jpg": jpeg[:sos] + scan * 101 + b"\xff\xd9",
        "regress-not-an-image.gif": b"GIF89a" + bytes(32),
    }


def safetensors(entries, data, metadata=None):
    header = dict(entries)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<4f", 1, -2, 3.5, 0)
    return {
        "seed-f32.safetensors": safetensors(
            {"features.conv0.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32,
            {"format": "pt"}),
        "seed-mixed.safetensors": safetensors(
            {"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
             "b": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]},
             "n": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]},
             "i": {"dtype": "I32", "shape": [1, 1], "data_offsets": [16, 20]},
             "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [20, 20]}},
            struct.pack("<2H2HqI", 0x3C00, 0xC000, 0x3F80, 0xC000, 12345, 7)),
        "seed-empty.safetensors": safetensors({}, b""),
    }


def main():
    images = image_seeds()
    images.update(image_regressions(images))
    for folder, seeds in (("image", images), ("safetensors", safetensors_seeds())):
        path = os.path.join(HERE, "corpus", folder)
        os.makedirs(path, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(path, name), "wb") as f:
                f.write(data)
        print(f"{len(seeds)} seeds in {path}")


if __name__ == "__main__":
    main()

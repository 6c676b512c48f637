"""Checks chex cam's outputs with Debian's Pillow and numpy, as a research user would read them:
every overlay decodes as a PNG of its original image's size (RGB), every .npy loads with
numpy.load as float32 (height, width) with finite values, and the boxes CSV names only files that
exist. Usage: check_cam_outputs.py OUT_DIR EXPECTED_MAPS [--nonnegative] ORIGINAL_IMAGE...
"""
import csv
import os
import sys

import numpy as np
from PIL import Image

out_dir, expected = sys.argv[1], int(sys.argv[2])
rest = sys.argv[3:]
nonnegative = "--nonnegative" in rest
originals = [a for a in rest if a != "--nonnegative"]
sizes = {os.path.splitext(os.path.basename(p))[0]: Image.open(p).size for p in originals}

maps = sorted(f[:-4] for f in os.listdir(out_dir) if f.endswith(".npy"))
assert len(maps) == expected, f"{len(maps)} maps in {out_dir}, expected {expected}: {maps}"
for base in maps:
    stem = next(s for s in sizes if base.startswith(s + "_"))
    width, height = sizes[stem]
    with Image.open(os.path.join(out_dir, base + ".png")) as png:
        assert png.format == "PNG" and png.mode == "RGB", f"{base}.png: {png.format} {png.mode}"
        assert png.size == (width, height), f"{base}.png is {png.size}, its image {(width, height)}"
        png.load()
    heat = np.load(os.path.join(out_dir, base + ".npy"))
    assert heat.dtype == np.float32 and heat.shape == (height, width), f"{base}.npy: {heat.dtype} {heat.shape}"
    assert np.isfinite(heat).all(), f"{base}.npy has non-finite values"
    assert heat.max() > heat.min(), f"{base}.npy is constant"
    if nonnegative:
        assert heat.min() >= 0, f"{base}.npy (Grad-CAM) has negative values"

with open(os.path.join(out_dir, "cam_boxes.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
assert rows, "cam_boxes.csv is empty"
for row in rows:
    base = os.path.splitext(row["image"])[0] + "_" + row["class"]
    assert base in maps, f"cam_boxes.csv names {base}, which has no map"
    width, height = sizes[os.path.splitext(row["image"])[0]]
    x, y, w, h = (float(row[k]) for k in "xywh")
    assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height, f"box out of image: {row}"
    assert 0 < float(row["probability"]) < 1
assert sum(row["rank"] == "1" for row in rows) == expected, "one rank-1 box per map"
print(f"{len(maps)} overlays and heatmaps in {out_dir} check out")

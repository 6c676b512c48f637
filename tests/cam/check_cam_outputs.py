"""Checks chex cam's outputs with Debian's Pillow, numpy and scipy, as a research user would read
them: every overlay decodes as a PNG of its original image's size (RGB), every .npy loads with
numpy.load as float32 (height, width) with finite values, and cam_boxes.csv holds, for each map,
exactly the boxes scipy.ndimage.label finds (8-connected regions of the map scaled to 0..1 at or
above the default threshold 0.5, ranked by summed scaled heat): the same pixels, heat within 1e-6.
Usage: check_cam_outputs.py OUT_DIR EXPECTED_MAPS [--nonnegative] ORIGINAL_IMAGE...
"""
import csv
import os
import sys

import numpy as np
from scipy import ndimage
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


def reference_boxes(heat, threshold=0.5):
    scaled = (heat.astype(np.float64) - heat.min()) / (float(heat.max()) - float(heat.min()))
    labels, count = ndimage.label(scaled >= threshold, structure=np.ones((3, 3)))
    boxes = []
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = where
        heat_sum = scaled[labels == index].sum()
        boxes.append((heat_sum, xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start))
    # scipy numbers regions in raster order of their first pixel, as chex breaks ties.
    boxes.sort(key=lambda b: -b[0])
    return boxes


for base in maps:
    heat = np.load(os.path.join(out_dir, base + ".npy"))
    got = [r for r in rows if os.path.splitext(r["image"])[0] + "_" + r["class"] == base]
    got.sort(key=lambda r: int(r["rank"]))
    want = reference_boxes(heat)
    assert len(got) == len(want), f"{base}: {len(got)} boxes in cam_boxes.csv, scipy finds {len(want)}"
    for r, (heat_sum, x, y, w, h) in zip(got, want):
        box = tuple(float(r[k]) for k in "xywh")
        assert box == (x, y, w, h), f"{base}: {r} against scipy's {(x, y, w, h)}"
        assert abs(float(r["heat"]) - heat_sum) <= 1e-6 * max(1.0, heat_sum), f"{base}: heat {r['heat']} vs {heat_sum}"
assert rows, "cam_boxes.csv is empty"
for row in rows:
    base = os.path.splitext(row["image"])[0] + "_" + row["class"]
    assert base in maps, f"cam_boxes.csv names {base}, which has no map"
    width, height = sizes[os.path.splitext(row["image"])[0]]
    x, y, w, h = (float(row[k]) for k in "xywh")
    assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height, f"box out of image: {row}"
    assert 0 < float(row["probability"]) < 1
assert sum(row["rank"] == "1" for row in rows) == expected, "one rank-1 box per map"
print(f"{len(maps)} overlays and heatmaps in {out_dir} check out, with {len(rows)} boxes as scipy finds them")

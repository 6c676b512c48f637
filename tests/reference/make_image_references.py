#!/usr/bin/python3
"""Generates torchvision's preprocessing of test images, at test time, into a build folder.

For each image (real NIH radiographs from DATA_DIR when present, plus synthetic PNG and JPEG files
written here with PIL in every pixel format chex decodes) one safetensors file holds what PIL and
torchvision make of it:
  decoded      [H, W, 3]     Image.open(p).convert('RGB'), values 0..255 (stored as F16: exact)
  resized      [224, 224, 3] Resize((224, 224)) of it (8-bit values)
  normalized   [3, 224, 224] ... + ToTensor() + Normalize(ImageNet)
  resized256   [h, w, 3]     Resize(256) (shorter side 256)
  tencrop      [10, 3, 224, 224] Resize(256) + TenCrop(224) + ToTensor + Normalize (some images)
and __metadata__ {"source": path, "kind": ...}. Nothing generated is committed.

    /usr/bin/python3 make_image_references.py OUTPUT_DIR DATA_DIR
"""
import os
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from safetensors_writer import save

NORMALIZE = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
TO_TENSOR = transforms.ToTensor()


def write_png(path, array, color_type, bit_depth):
    """A PNG written by hand: PIL cannot write 16-bit RGB or grey + alpha."""
    h, w = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + array[y].astype(dtype).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def smooth_field(rng, h, w, channels):
    """A radiograph-like image: smooth gradients plus noise, covering the whole range."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        f = 0.5 + 0.35 * np.sin(x / (7.0 + 3 * c)) * np.cos(y / (11.0 + c)) + 0.1 * rng.standard_normal((h, w))
        planes.append(np.clip(f, 0, 1))
    return np.stack(planes, axis=-1)


def synthetic_images(folder, rng):
    """(path, kind) of files in every format chex reads, at sizes that exercise the rounding paths."""
    os.makedirs(folder, exist_ok=True)
    out = []

    def add(name, kind):
        out.append((os.path.join(folder, name), kind))
        return os.path.join(folder, name)

    f = smooth_field(rng, 301, 257, 4)
    Image.fromarray((f[..., 0] * 255).astype(np.uint8), "L").save(add("grey8_257x301.png", "grey8"))
    # 16-bit grey: PIL opens it as mode "I" and convert('RGB') clips every value above 255.
    g16 = (f[..., 0] * 400).astype(np.uint16)  # about half the pixels above 255
    write_png(add("grey16_257x301.png", "grey16"), g16, 0, 16)
    la = (f[..., :2] * 255).astype(np.uint8)
    write_png(add("grey_alpha_257x301.png", "grey_alpha"), la, 4, 8)
    write_png(add("grey_alpha16_257x301.png", "grey_alpha16"), (f[..., :2] * 65535).astype(np.uint16), 4, 16)
    Image.fromarray((f[..., :3] * 255).astype(np.uint8), "RGB").save(add("rgb_257x301.png", "rgb"))
    write_png(add("rgb16_257x301.png", "rgb16"), (f[..., :3] * 65535).astype(np.uint16), 2, 16)
    Image.fromarray((f * 255).astype(np.uint8), "RGBA").save(add("rgba_257x301.png", "rgba"))
    write_png(add("rgba16_257x301.png", "rgba16"), (f * 65535).astype(np.uint16), 6, 16)
    Image.fromarray((f[..., :3] * 255).astype(np.uint8), "RGB").quantize(37).save(add("palette_257x301.png", "palette"))
    Image.fromarray(f[..., 0] > 0.5).save(add("bilevel_257x301.png", "bilevel"))
    # Wide, and smaller than 224 on one side (Resize enlarges then).
    Image.fromarray((smooth_field(rng, 150, 400, 1)[..., 0] * 255).astype(np.uint8), "L").save(
        add("grey8_400x150.png", "grey8_upscale"))
    # JPEG: grey, colour with 4:2:0 chroma (PIL's default) and 4:4:4, progressive.
    Image.fromarray((f[..., 0] * 255).astype(np.uint8), "L").save(add("grey_257x301.jpg", "jpeg_grey"), quality=90)
    rgb = Image.fromarray((f[..., :3] * 255).astype(np.uint8), "RGB")
    rgb.save(add("rgb420_257x301.jpg", "jpeg_rgb420"), quality=90)
    rgb.save(add("rgb444_257x301.jpg", "jpeg_rgb444"), quality=90, subsampling=0)
    rgb.save(add("rgb_progressive_257x301.jpg", "jpeg_progressive"), quality=90, progressive=True)
    return out


def nih_images(data_dir, grey_count=3):
    """A few 8-bit grey NIH radiographs and all the RGBA ones."""
    folder = os.path.join(data_dir, "nih-sample", "images")
    if not os.path.isdir(folder):
        return []
    out, grey = [], 0
    for name in sorted(os.listdir(folder)):
        mode = Image.open(os.path.join(folder, name)).mode
        if mode == "L" and grey < grey_count:
            out.append((os.path.join(folder, name), "nih_grey"))
            grey += 1
        elif mode == "RGBA":
            out.append((os.path.join(folder, name), "nih_rgba"))
    return out


def main(out_dir, data_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(2017)
    images = nih_images(data_dir) + synthetic_images(os.path.join(out_dir, "synthetic"), rng)
    with_tencrop = {"nih_grey", "nih_rgba", "grey8", "jpeg_rgb420"}
    done_tencrop = set()
    for index, (path, kind) in enumerate(images):
        img = Image.open(path).convert("RGB")
        resized = transforms.Resize((224, 224))(img)
        resized256 = transforms.Resize(256)(img)
        t = {
            "decoded": torch.from_numpy(np.array(img)).float(),
            "resized": torch.from_numpy(np.array(resized)).float(),
            "normalized": NORMALIZE(TO_TENSOR(resized)),
            "resized256": torch.from_numpy(np.array(resized256)).float(),
        }
        if kind in with_tencrop and kind not in done_tencrop:
            crops = transforms.TenCrop(224)(resized256)
            t["tencrop"] = torch.stack([NORMALIZE(TO_TENSOR(c)) for c in crops])
            done_tencrop.add(kind)
        save(os.path.join(out_dir, f"image_{index:02d}_{kind}.safetensors"), t, {"source": path, "kind": kind},
             half=("decoded", "resized", "resized256"))
    print(f"wrote {len(images)} image references to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

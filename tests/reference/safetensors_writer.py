"""The safetensors writer shared by the reference generators (test-time only; nothing is committed).

Layout: an 8-byte little-endian header length, a JSON header of name -> {dtype, shape,
data_offsets}, padded with spaces to a multiple of 8, then the raw little-endian data.
"""
import json
import os
import struct

import torch


def save(path, tensors, metadata=None, half=()):
    """Writes `tensors` (name -> tensor, in order) atomically: integer tensors as I64, floating ones
    as F32, or as F16 for the names in `half` (exact for 8-bit image values, half the size)."""
    header = {"__metadata__": {k: str(v) for k, v in (metadata or {}).items()}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if not t.is_floating_point():
            kind, t = "I64", t.to(torch.int64)
        elif name in half:
            kind, t = "F16", t.to(torch.float16)
        else:
            kind, t = "F32", t.to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)

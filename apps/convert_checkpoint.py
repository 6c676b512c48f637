#!/usr/bin/python3
"""Converts a PyTorch DenseNet checkpoint (.pth / .pth.tar) into a safetensors file with
torchvision's state_dict names, which chex loads (chex predict --weights, models::load_weights).

    /usr/bin/python3 apps/convert_checkpoint.py INPUT.pth[.tar] OUTPUT.safetensors [--dtype f32|f16|bf16]

Accepts a plain state_dict, a dict holding one under 'state_dict' (as arnoweng/CheXNet and most
training scripts save it), 'model_state_dict' or 'model', or a whole pickled nn.Module. Names are
mapped to torchvision's DenseNet:
  - "module." prefixes (nn.DataParallel) are removed;
  - a "densenet121." (or 169/201) wrapper prefix is removed and "classifier.0." becomes "classifier."
    (arnoweng/CheXNet wraps torchvision's model and puts a Sigmoid after the classifier);
  - the legacy dense-layer names of torchvision < 0.4 ("norm.1", "conv.2", ...) become "norm1", ...
Training state (optimizer, epoch, ...) is left out. Needs Debian's python3-torch; reads the file
with torch.load(weights_only=True) unless --trust-pickle is given (a pickle can run code: only use
that for files from a source you trust).
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
WRAPPER = re.compile(r"^densenet(?:121|161|169|201)\.")


def canonical_name(name):
    while name.startswith("module."):
        name = name[len("module."):]
    name = WRAPPER.sub("", name)
    if name.startswith("classifier.0."):
        name = "classifier." + name[len("classifier.0."):]
    m = LEGACY.match(name)
    return m.group(1) + m.group(2) + "." + m.group(3) if m else name


def find_state_dict(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return find_state_dict(obj[key])
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(obj):
            return obj
    sys.exit("convert_checkpoint: no state_dict found (expected a dict of tensors, or one under "
             "'state_dict', 'model_state_dict' or 'model')")


def tensor_bytes(t, dtype):
    """(safetensors dtype, little-endian bytes) of a tensor."""
    t = t.detach().cpu().contiguous()
    if t.is_floating_point():
        if dtype == "bf16":
            return "BF16", t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        if dtype == "f16":
            return "F16", t.to(torch.float16).numpy().tobytes()
        return "F32", t.to(torch.float32).numpy().tobytes()
    return "I64", t.to(torch.int64).numpy().tobytes()


def write_safetensors(path, tensors, dtype, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        kind, data = tensor_bytes(t, dtype)
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # the data section starts 8-byte aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # the output appears only when complete
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="PyTorch checkpoint (.pth, .pth.tar)")
    parser.add_argument("output", help="safetensors file to write")
    parser.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32",
                        help="storage type of floating-point tensors (default f32; chex computes in f32)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow arbitrary pickled objects (runs code from the file: trusted files only)")
    args = parser.parse_args()

    try:
        obj = torch.load(args.input, map_location="cpu", weights_only=not args.trust_pickle)
    except FileNotFoundError:
        sys.exit(f"convert_checkpoint: '{args.input}' does not exist")
    except Exception as e:  # noqa: BLE001  (torch raises several types for unreadable files)
        pickled_objects = not args.trust_pickle and "weights only" in str(e).lower()
        hint = ("; it pickles objects, not only tensors: if the file is from a source you trust, retry with "
                "--trust-pickle" if pickled_objects else
                "; it is not a PyTorch checkpoint, or it is damaged (cut short by a download?)")
        sys.exit(f"convert_checkpoint: cannot read '{args.input}': {e}{hint}")

    state = find_state_dict(obj)
    out, renamed = {}, 0
    for name, tensor in state.items():
        new = canonical_name(name)
        if new in out:
            sys.exit(f"convert_checkpoint: two entries map to '{new}' (one of them is '{name}')")
        renamed += new != name
        out[new] = tensor
    write_safetensors(args.output, out, args.dtype,
                      {"format": "pt", "source": os.path.basename(args.input), "converter": "chex convert_checkpoint.py"})
    classes = tuple(out["classifier.weight"].shape) if "classifier.weight" in out else None
    print(f"wrote {len(out)} tensors to {args.output} ({renamed} renamed to torchvision's names; "
          f"classifier {classes[0] if classes else 'absent'} classes)")


if __name__ == "__main__":
    main()

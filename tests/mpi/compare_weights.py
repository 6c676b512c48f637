"""compare_weights.py A B TOLERANCE: the model tensors ("model.*") of two train_chexnet checkpoints
must agree within TOLERANCE, norm-relative over all of them: |A - B| / |A| (Euclidean norms).
Prints the figure and the worst tensors; exits 1 when over. Standard library only."""
import json
import math
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or not name.startswith("model.") or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = struct.unpack("<%df" % ((end - begin) // 4), data[8 + n + begin:8 + n + end])
    return tensors


a, b = load(sys.argv[1]), load(sys.argv[2])
tolerance = float(sys.argv[3])
if sorted(a) != sorted(b) or not a:
    sys.exit("the checkpoints hold different model tensors")
diff = {k: sum((x - y) ** 2 for x, y in zip(a[k], b[k])) for k in a}
norm = sum(x * x for k in a for x in a[k])
relative = math.sqrt(sum(diff.values()) / norm)
worst = sorted(diff, key=diff.get, reverse=True)[:3]
print("norm-relative difference %.3g (tolerance %g); largest in %s" % (relative, tolerance, ", ".join(worst)))
sys.exit(0 if relative <= tolerance else 1)

#!/usr/bin/python3
"""Generates scikit-learn AUROC references for chex's metrics tests, at test time, into a build folder.

Writes one JSON file: a list of cases, each with scores, 0/1 labels and sklearn's roc_auc_score.
Scores are written with 17 significant digits so that both sides see the same doubles. Run by CTest
as a setup fixture, with Debian's python3-sklearn:

    /usr/bin/python3 make_metrics_references.py OUTPUT_DIR
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def cases(rng):
    yield "random continuous n=1000", rng.random(1000), rng.random(1000) < 0.3
    y = rng.random(2000) < 0.2
    yield "informative n=2000", rng.normal(size=2000) + 1.2 * y, y
    y = rng.random(500) < 0.5
    yield "heavy ties (one decimal)", np.round(rng.random(500) + 0.3 * y, 1), y
    y = rng.random(300) < 0.1
    yield "few distinct scores", rng.integers(0, 4, 300).astype(float), y
    yield "tiny: one positive one negative", np.array([0.2, 0.7]), np.array([0, 1])
    yield "tiny: reversed", np.array([0.9, 0.1]), np.array([0, 1])
    yield "tiny: tied pair", np.array([0.5, 0.5]), np.array([1, 0])
    yield "tiny: three", np.array([0.1, 0.4, 0.4]), np.array([0, 1, 0])
    yield "all tied", np.full(50, 0.25), rng.random(50) < 0.5
    yield "perfect separation", np.arange(40) / 40.0, np.arange(40) >= 30
    y = rng.random(5000) < 0.02
    yield "rare positives, float32 probabilities", (1 / (1 + np.exp(-(rng.normal(size=5000) + 2 * y)))).astype(np.float32).astype(float), y
    y = rng.random(30000) < 0.1
    yield "large with ties n=30000", np.round(rng.normal(size=30000) + y, 2), y


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240)
    result = []
    for name, scores, labels in cases(rng):
        labels = np.asarray(labels).astype(int)
        result.append({"name": name, "scores": [float(s) for s in scores], "labels": [int(v) for v in labels],
                       "auroc": float(roc_auc_score(labels, scores))})
    path = os.path.join(out, "sklearn_auroc.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)  # json writes floats with repr: shortest round-trip digits
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()

# Compares two detectron2 weight files (pickles of {"model": {name: ndarray}, ...}) key by key and
# value by value, reading both with plain pickle.load as detectron2 does; prints a JSON verdict.
import json
import pickle
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


official, ours = load(sys.argv[1]), load(sys.argv[2])
problems = []
for field in ("__author__", "matching_heuristics"):
    if official.get(field) != ours.get(field) or type(official.get(field)) is not type(ours.get(field)):
        problems.append(f"{field}: {official.get(field)!r} vs {ours.get(field)!r}")
if set(official) != set(ours):
    problems.append(f"top-level keys {sorted(official)} vs {sorted(ours)}")
a, b = official["model"], ours["model"]
if set(a) != set(b):
    problems.append(f"only official: {sorted(set(a) - set(b))}; only ours: {sorted(set(b) - set(a))}")
for key in sorted(set(a) & set(b)):
    x, y = a[key], b[key]
    if not isinstance(y, np.ndarray):
        problems.append(f"{key}: ours is a {type(y).__name__}, not an ndarray")
    elif x.dtype != y.dtype or x.shape != y.shape:
        problems.append(f"{key}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
    elif not np.array_equal(x, y):
        problems.append(f"{key}: values differ (max |diff| {np.abs(x.astype('f8') - y.astype('f8')).max()})")
    elif not y.flags.writeable or not y.flags.c_contiguous:
        problems.append(f"{key}: ours is not a writable C-contiguous array")
print(json.dumps({"keys": len(a), "sample": sorted(a)[:3], "problems": problems}))

#!/usr/bin/env python3
"""Checks that a collabgpu model file is usable from Python alone.

Loads the four tensors with `safetensors.numpy.load_file`, reads the id maps and the y-range from
the file's metadata (every value is a JSON string), recomputes predictions for some (user, item)
pairs in numpy and compares them with `collabgpu predict --json`. Exits non-zero on any mismatch.

    python3 scripts/check_model_python.py target/debug/collabgpu model.safetensors [--pairs 20]

Needs `pip install safetensors numpy`.
"""

import argparse
import hashlib
import json
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

TENSORS = ("user_factors", "item_factors", "user_bias", "item_bias")


def load_model(path):
    """The tensors, the raw user and item ids in index order, and the y-range (or None)."""
    tensors = load_file(path)
    missing = [name for name in TENSORS if name not in tensors]
    if missing:
        sys.exit(f"{path}: tensors {missing} are missing; was it written by `collabgpu train --out`?")
    with safe_open(path, framework="np") as f:
        metadata = f.metadata() or {}
    for key in ("user_ids", "item_ids", "y_range"):
        if key not in metadata:
            sys.exit(f"{path}: metadata has no `{key}`; was it written by `collabgpu train --out`?")
    users = json.loads(metadata["user_ids"])
    items = json.loads(metadata["item_ids"])
    y_range = json.loads(metadata["y_range"])
    titles = json.loads(metadata["titles"]) if "titles" in metadata else None
    return tensors, users, items, y_range, titles


def checksum(path):
    """The file's recorded and recomputed `checksum` metadata (README, "The model file"): SHA-256
    over every other metadata entry by key (key, NUL, value, NUL), then every tensor by name (name,
    NUL, its little-endian bytes as stored). (None, None) for a file written before checksums."""
    with open(path, "rb") as f:
        raw = f.read()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    metadata = header.pop("__metadata__", {}) or {}
    stored = metadata.get("checksum")
    if stored is None:
        return None, None
    digest = hashlib.sha256()
    for key in sorted(k for k in metadata if k != "checksum"):
        digest.update(key.encode() + b"\0" + metadata[key].encode() + b"\0")
    for name in sorted(header):
        start, end = header[name]["data_offsets"]
        digest.update(name.encode() + b"\0" + data[start:end])
    return stored, "sha256:" + digest.hexdigest()


def predict(tensors, user, item, y_range):
    """fastai's DotProductBias: dot(P[u], Q[i]) + bu[u] + bi[i], through the sigmoid range."""
    p = tensors["user_factors"][user].astype(np.float64)
    q = tensors["item_factors"][item].astype(np.float64)
    x = p @ q + float(tensors["user_bias"][user]) + float(tensors["item_bias"][item])
    if y_range is None:
        return x
    lo, hi = y_range
    return lo + (hi - lo) / (1.0 + np.exp(-x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", help="path to the collabgpu binary")
    parser.add_argument("model", help="a model file written by `collabgpu train --out`")
    parser.add_argument("--pairs", type=int, default=20, help="how many (user, item) pairs")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    tensors, users, items, y_range, titles = load_model(args.model)
    stored, recomputed = checksum(args.model)
    if stored is None:
        print(f"{args.model}: no checksum (written before checksums existed)")
    elif stored != recomputed:
        sys.exit(f"{args.model}: checksum {stored} recorded, {recomputed} recomputed")
    else:
        print(f"{args.model}: checksum {stored[:19]}... recomputed from the file alone")
    u, k = tensors["user_factors"].shape
    i = tensors["item_factors"].shape[0]
    if (u, i) != (len(users), len(items)):
        sys.exit(f"{args.model}: {u} x {i} factors for {len(users)} user and {len(items)} item ids")
    print(f"{args.model}: U={u} I={i} K={k} y_range={y_range} titles={'yes' if titles else 'no'}")

    rng = np.random.default_rng(0)
    pairs = [(0, 0), (u - 1, i - 1)]
    pairs += [(int(a), int(b)) for a, b in zip(rng.integers(0, u, args.pairs), rng.integers(0, i, args.pairs))]
    pairs = pairs[: max(args.pairs, 2)]
    failures = 0
    for user, item in pairs:
        want = predict(tensors, user, item, y_range)
        command = [args.binary, "predict", "--model", args.model,
                   "--user", users[user], "--item", items[item], "--json"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"FAIL user {users[user]} item {items[item]}: {result.stderr.strip()}")
            failures += 1
            continue
        got = json.loads(result.stdout)["prediction"]
        ok = abs(got - want) <= args.tolerance
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} user {users[user]:>6} item {items[item]:>6}: "
              f"numpy {want:.6f}  collabgpu {got:.6f}")
    print(f"{len(pairs) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

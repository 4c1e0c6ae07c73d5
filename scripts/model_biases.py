#!/usr/bin/env python3
"""The lowest and highest learned item biases of a `collabgpu train --out` model file, with titles,
read with nothing but Python's `safetensors` (and numpy): the model file stands on its own.

    python3 scripts/model_biases.py model.safetensors [--top 5]
"""

import argparse
import json

import numpy as np
from safetensors import safe_open


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    with safe_open(args.model, "np") as f:
        meta = f.metadata()
        item_bias = f.get_tensor("item_bias")
        shapes = {name: f.get_slice(name).get_shape() for name in f.keys()}
    item_ids = json.loads(meta["item_ids"])
    titles = json.loads(meta["titles"]) if "titles" in meta else item_ids
    print(f"tensors {shapes}; y_range {json.loads(meta['y_range'])}; "
          f"config {json.loads(meta['config'])}")
    order = np.argsort(item_bias, kind="stable")
    for label, picks in (("lowest", order[:args.top]), ("highest", order[::-1][:args.top])):
        print(f"{label} item biases:")
        for d in picks:
            print(f"  {item_bias[d]:+.4f}  {titles[d]}  (id {item_ids[d]})")


if __name__ == "__main__":
    main()

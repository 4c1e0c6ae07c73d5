#!/usr/bin/env python3
"""fastai's chapter 8 recipe (DotProductBias, Adam with decoupled weight decay, one-cycle) in plain
PyTorch, measured side by side with `collabgpu train --backend cpu` on the same data and machine.

The PyTorch loop follows SPEC.md: trunc-normal init (fmod(z, 2) * 0.01), sigmoid range (0, 5.5),
MSE, AdamW (beta2 0.99, eps 1e-5, wd 0.1 decoupled: p *= 1 - lr*wd), and SPEC's one-cycle lr and
beta1 set by hand before every batch (pct 0.25, lr_max/25 -> lr_max -> lr_max/1e5, beta1
0.95 -> 0.85 -> 0.95), a fresh shuffle per epoch, drop-last batches of 64, 5 epochs, a random 80/20
split. Its split and shuffles come from torch's generator, not collabgpu's ChaCha streams, so the
two runs see different (equally random) splits; quality is compared over seeds.

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install --no-deps torch && /tmp/torchvenv/bin/pip install numpy \
        filelock typing-extensions sympy networkx jinja2 fsspec
    cargo build --release
    /tmp/torchvenv/bin/python scripts/pytorch_recipe.py --data ../shared/data/ml-100k --seeds 1 2 3

Prints one JSON object per run (engine, seed, valid_mse, train_seconds, ratings_per_second).
"""

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import torch
from torch import nn


def read_ml100k(path: Path):
    users, items, ratings = [], [], []
    with open(path / "u.data") as f:
        for line in f:
            u, i, r, _ = line.split("\t")
            users.append(int(u))
            items.append(int(i))
            ratings.append(float(r))
    user_index = {u: d for d, u in enumerate(sorted(set(users)))}
    item_index = {i: d for d, i in enumerate(sorted(set(items)))}
    return (
        torch.tensor([user_index[u] for u in users]),
        torch.tensor([item_index[i] for i in items]),
        torch.tensor(ratings),
        len(user_index),
        len(item_index),
    )


class DotProductBias(nn.Module):
    def __init__(self, n_users, n_items, k, y_range=(0.0, 5.5), init_std=0.01):
        super().__init__()
        self.user_factors = nn.Embedding(n_users, k)
        self.item_factors = nn.Embedding(n_items, k)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for emb in (self.user_factors, self.item_factors, self.user_bias, self.item_bias):
            with torch.no_grad():
                emb.weight.normal_().fmod_(2).mul_(init_std)
        self.y_range = y_range

    def forward(self, users, items):
        x = (self.user_factors(users) * self.item_factors(items)).sum(dim=1)
        x = x + self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0]
        lo, hi = self.y_range
        return torch.sigmoid(x) * (hi - lo) + lo


def cos_sched(a, b, f):
    return a + (1 + math.cos(math.pi * (1 - f))) * (b - a) / 2


def one_cycle(lr_max, pos):
    if pos < 0.25:
        f = pos / 0.25
        return cos_sched(lr_max / 25, lr_max, f), cos_sched(0.95, 0.85, f)
    f = (pos - 0.25) / 0.75
    return cos_sched(lr_max, lr_max / 1e5, f), cos_sched(0.85, 0.95, f)


def train_pytorch(data, seed, epochs=5, lr_max=5e-3, wd=0.1, k=50, bs=64, valid_pct=0.2):
    users, items, ratings, n_users, n_items = data
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(ratings), generator=gen)
    n_valid = round(valid_pct * len(ratings))
    valid, train = perm[:n_valid], perm[n_valid:]
    model = DotProductBias(n_users, n_items, k)
    opt = torch.optim.AdamW(model.parameters(), lr=lr_max, betas=(0.9, 0.99), eps=1e-5,
                            weight_decay=wd)
    per_epoch = len(train) // bs
    total = epochs * per_epoch
    step = 0
    train_seconds = 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        order = train[torch.randperm(len(train), generator=gen)]
        for s in range(per_epoch):
            lr, beta1 = one_cycle(lr_max, step / total)
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (beta1, 0.99)
            batch = order[s * bs:(s + 1) * bs]
            pred = model(users[batch], items[batch])
            loss = ((pred - ratings[batch]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        train_seconds += time.perf_counter() - started
    with torch.no_grad():
        valid_mse = ((model(users[valid], items[valid]) - ratings[valid]) ** 2).mean().item()
    return {
        "engine": f"pytorch {torch.__version__} ({torch.get_num_threads()} threads)",
        "seed": seed,
        "valid_mse": valid_mse,
        "train_seconds": train_seconds,
        "ratings_per_second": per_epoch * bs * epochs / train_seconds,
    }


def train_collabgpu(binary, data_dir, seed, extra):
    out = subprocess.run(
        [binary, "train", "--data", str(data_dir), "--seed", str(seed), "--json", *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    return {
        "engine": f"collabgpu {summary['backend']}",
        "seed": seed,
        "valid_mse": summary["valid_loss"],
        "train_seconds": summary["train_seconds"],
        "ratings_per_second": summary["ratings_per_second"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--collabgpu", default="target/release/collabgpu")
    parser.add_argument("--threads", type=int, default=0, help="both engines; 0: all cores")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_ml100k(args.data)
    extra = ["--threads", str(args.threads)]
    results = []
    for seed in args.seeds:
        for run in (lambda: train_pytorch(data, seed),
                    lambda: train_collabgpu(args.collabgpu, args.data, seed, extra)):
            result = run()
            print(json.dumps(result), flush=True)
            results.append(result)
    for engine in sorted({r["engine"] for r in results}):
        mine = [r for r in results if r["engine"] == engine]
        mse = sum(r["valid_mse"] for r in mine) / len(mine)
        speed = sum(r["ratings_per_second"] for r in mine) / len(mine)
        print(json.dumps({"engine": engine, "mean_valid_mse": mse, "mean_ratings_per_second": speed}))


if __name__ == "__main__":
    main()

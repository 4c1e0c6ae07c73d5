"""The fastai book's chapter 8 (collaborative filtering) on MovieLens 100K with collabgpu: train
DotProductBias, read off the lowest and highest item biases and the films nearest to one, and draw
the item factors on two principal components. `python examples/chapter8.py [DATA]`, where DATA is
anything `collabgpu train --data` takes (default ml-100k)."""

import sys

import collabgpu as cg

ratings = cg.load_ratings(sys.argv[1] if len(sys.argv) > 1 else "ml-100k", item_key="title")
model = cg.DotProductBias(n_factors=50, y_range=(0, 5.5), seed=42)
print(model.fit(ratings, valid_pct=0.2, epochs=5, lr=5e-3, wd=0.1, bs=64))
biases = model.biases(n=5)
for end in ("lowest", "highest"):
    print(f"{end} item biases:\n", biases[biases.end == end][["title", "bias", "mean_rating"]])
print(model.similar("Silence of the Lambs", n=5))
print("variance shares:", model.plot_factors("chapter8-factors.png", labels=40))

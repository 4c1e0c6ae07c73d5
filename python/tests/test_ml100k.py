"""The package on the real MovieLens 100K, against the `collabgpu` CLI: the same data gives the
same numbers, to the bit on the CPU."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import collabgpu as cg

EPOCHS = 2


def run_cli(cli, *args):
    done = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"{cli} {' '.join(map(str, args))} failed:\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def ratings(ml100k):
    return cg.load_ratings(str(ml100k))


@pytest.fixture(scope="module")
def fitted(ratings):
    m = cg.DotProductBias(n_factors=50, y_range=(0, 5.5), backend="cpu", seed=42)
    history = m.fit(ratings, valid_pct=0.2, epochs=EPOCHS, lr=5e-3, wd=0.1, bs=64, progress=False)
    return m, history


def test_load_ratings_reads_ml100k_in_file_order(ratings, ml100k):
    assert list(ratings.columns) == ["user", "item", "rating", "timestamp", "title"]
    assert len(ratings) == 100_000
    assert ratings["user"].nunique() == 943 and ratings["item"].nunique() == 1682
    assert ratings["user"].dtype == np.int64 and ratings["rating"].dtype == np.float32
    first = (ml100k / "u.data").read_text().split("\n", 1)[0].split("\t")
    row = ratings.iloc[0]
    assert [row[c] for c in ("user", "item", "rating", "timestamp")] == [int(first[0]), int(first[1]), float(first[2]), int(first[3])]
    assert ratings.loc[ratings["item"] == 1, "title"].iloc[0] == "Toy Story (1995)"
    by_title = cg.load_ratings(str(ml100k), item_key="title")
    assert by_title["item"].nunique() == 1664 and pd.api.types.is_string_dtype(by_title["item"])


def test_fit_gives_the_cli_numbers_bit_for_bit(fitted, ml100k, cli):
    _, history = fitted
    lines = run_cli(cli, "train", "--data", ml100k, "--epochs", EPOCHS, "--json", "--quiet")
    epochs = [line for line in lines if line["type"] == "epoch"]
    summary = next(line for line in lines if line["type"] == "summary")
    assert history["valid_loss"].iloc[-1] == summary["valid_loss"]
    assert list(history["train_loss"]) == [e["train_loss"] for e in epochs]
    assert list(history["valid_loss"]) == [e["valid_loss"] for e in epochs]


def test_fit_by_title_gives_the_cli_numbers(ml100k, cli):
    df = cg.load_ratings(str(ml100k))
    m = cg.DotProductBias(seed=7)
    history = m.fit(df, epochs=1, item_key="title", progress=False)
    lines = run_cli(cli, "train", "--data", ml100k, "--epochs", 1, "--item-key", "title", "--seed", 7, "--json", "--quiet")
    summary = next(line for line in lines if line["type"] == "summary")
    assert history["valid_loss"].iloc[-1] == summary["valid_loss"]
    assert summary["items"] == len(m.item_ids) == 1664


def test_predict_equals_cli_predict(fitted, cli, tmp_path):
    m, _ = fitted
    path = tmp_path / "m.safetensors"
    m.save(path)
    pairs = [(1, 1), (196, 242), (943, 1330), (13, 50)]
    got = m.predict([u for u, _ in pairs], [i for _, i in pairs])
    for (user, item), prediction in zip(pairs, got):
        line = run_cli(cli, "predict", "--model", path, "--user", user, "--item", item, "--json")[0]
        assert np.float32(line["prediction"]) == prediction, (user, item)


def test_a_cli_model_loads_and_predicts_as_the_cli_does(ml100k, cli, tmp_path):
    path = tmp_path / "cli.safetensors"
    run_cli(cli, "train", "--data", ml100k, "--epochs", 1, "--out", path, "--quiet")
    m = cg.load_model(path)
    line = run_cli(cli, "predict", "--model", path, "--user", 42, "--item", "star wars", "--json")[0]
    assert np.float32(line["prediction"]) == m.predict([42], [line["item"]])[0]
    top = run_cli(cli, "recommend", "--model", path, "--user", 42, "--n", 5, "--exclude-rated", ml100k, "--json")[0]
    ours = m.recommend(42, n=5, exclude=cg.load_ratings(str(ml100k)))
    assert list(ours["item"]) == [int(r["id"]) for r in top["recommendations"]]
    # Without data both leave out what the model file records user 42 rated in training.
    top = run_cli(cli, "recommend", "--model", path, "--user", 42, "--n", 5, "--json")[0]
    assert list(m.recommend(42, n=5)["item"]) == [int(r["id"]) for r in top["recommendations"]]
    table = run_cli(cli, "biases", "--model", path, "--n", 3, "--json")[0]
    ours = m.biases(n=3)
    assert list(ours[ours["end"] == "highest"]["ratings"]) == [r["ratings"] for r in table["highest"]]


def test_chapter8_questions_have_chapter8_answers(fitted, ratings):
    m, history = fitted
    assert 0.80 < history["valid_loss"].iloc[-1] < 0.95
    highest = m.biases(n=5)
    highest = highest[highest["end"] == "highest"]
    # Every fastai run of chapter 8 puts these among the highest item biases.
    assert {"Star Wars (1977)", "Schindler's List (1993)", "Titanic (1997)", "Shawshank Redemption, The (1994)"} & set(highest["title"])
    rated = set(ratings.loc[ratings["user"] == 1, "item"])
    assert not rated & set(m.recommend(1, n=20)["item"])


def test_plot_factors_draws_the_pca_picture(fitted, tmp_path):
    m, _ = fitted
    path = tmp_path / "factors.svg"
    shares = m.plot_factors(path, labels=20)
    assert len(shares) == 2 and shares[0] >= shares[1] > 0
    assert path.read_text().lstrip().startswith("<svg") or "<svg" in path.read_text()[:500]


def test_adapters_are_the_cli_info(cli):
    done = subprocess.run([cli, "info", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert cg.adapters() == json.loads(done.stdout)["adapters"]


def test_the_chapter8_example_runs(ml100k, tmp_path):
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "chapter8.py"
    done = subprocess.run(
        [sys.executable, str(example), str(ml100k)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "valid_loss" in done.stdout and "highest item biases" in done.stdout
    assert (tmp_path / "chapter8-factors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_item_pca_is_the_principal_components_of_the_most_rated_items(fitted, ratings):
    m, _ = fitted
    points = m.item_pca(labels=10)
    assert list(points.columns) == ["item", "title", "pc1", "pc2", "labelled"]
    # Most rated first, ties by ascending id (the model's index order), as the library ranks them.
    counts = ratings.groupby("item").size()
    most_rated = counts.sort_values(ascending=False, kind="stable").index[:1000]
    assert len(points) == 1000 and set(points["item"]) == set(most_rated)
    assert points["labelled"].sum() == 10
    # The same axes from numpy's SVD of the centred factor rows, up to each axis's sign.
    index = {item: row for row, item in enumerate(m.item_ids)}
    q = m.item_factors[[index[i] for i in points["item"]]].astype(np.float64)
    centred = q - q.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for axis, column in enumerate(["pc1", "pc2"]):
        want = centred @ vt[axis]
        got = points[column].to_numpy()
        sign = np.sign(got @ want)
        np.testing.assert_allclose(sign * got, want, atol=1e-4)
    shares = s**2 / (s**2).sum()
    np.testing.assert_allclose(points.attrs["variance_share"], shares[:2], rtol=1e-3)

"""The API on small frames the tests build: each answer is recomputed here in numpy from the
model's own parameters, so a wrong row, a wrong id map or a wrong formula fails."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

import collabgpu as cg
from conftest import small_frame

FAST = dict(epochs=2, bs=16, progress=False)


def numpy_predict(m, users, items):
    """SPEC's prediction, in float64, from the arrays the model exposes."""
    u = np.searchsorted(m.user_ids, users)
    i = np.array([list(m.item_ids).index(x) for x in items])
    x = (m.user_factors[u].astype(np.float64) * m.item_factors[i]).sum(1) + m.user_bias[u] + m.item_bias[i]
    lo, hi = m.y_range
    return lo + (hi - lo) / (1 + np.exp(-x))


@pytest.fixture(scope="module")
def fitted():
    df = small_frame()
    m = cg.DotProductBias(n_factors=8, seed=3)
    history = m.fit(df, **FAST)
    return df, m, history


def test_history_has_one_row_per_epoch_with_the_cli_columns(fitted):
    _, _, history = fitted
    assert list(history.columns) == ["epoch", "train_loss", "valid_loss", "valid_rmse", "seconds"]
    assert list(history["epoch"]) == [0, 1]
    assert np.allclose(history["valid_rmse"], np.sqrt(history["valid_loss"]))
    assert (history["seconds"] >= 0).all()


def test_parameters_have_the_model_shapes_and_ids_are_sorted(fitted):
    df, m, _ = fitted
    users, items = df["user"].nunique(), df["item"].nunique()
    assert m.user_factors.shape == (users, 8) and m.item_factors.shape == (items, 8)
    assert m.user_bias.shape == (users,) and m.item_bias.shape == (items,)
    assert m.user_factors.dtype == np.float32
    assert list(m.user_ids) == sorted(df["user"].unique())
    assert list(m.item_ids) == sorted(df["item"].unique())
    assert m.titles[0] == f"Film {m.item_ids[0]}"


def test_predict_is_the_dot_product_bias_formula(fitted):
    df, m, _ = fitted
    users, items = df["user"].to_numpy()[:50], df["item"].to_numpy()[:50]
    got = m.predict(users, items)
    assert got.dtype == np.float32 and got.shape == (50,)
    np.testing.assert_allclose(got, numpy_predict(m, users, items), rtol=1e-5, atol=1e-6)


def test_recommend_ranks_unrated_items_by_prediction(fitted):
    df, m, _ = fitted
    user = df["user"].iloc[0]
    rated = set(df.loc[df["user"] == user, "item"])
    top = m.recommend(user, n=5)
    assert list(top.columns) == ["item", "title", "score"]
    assert not rated & set(top["item"]), "recommend must leave out the items the user rated"
    unrated = [i for i in m.item_ids if i not in rated]
    scores = m.predict([user] * len(unrated), unrated)
    order = np.lexsort((np.arange(len(unrated)), -scores))[:5]
    assert list(top["item"]) == [unrated[k] for k in order]
    np.testing.assert_array_equal(top["score"].to_numpy(), scores[order])
    everything = m.recommend(user, n=len(m.item_ids), exclude_rated=False)
    assert len(everything) == len(m.item_ids)


def test_similar_is_cosine_of_item_factors(fitted):
    _, m, _ = fitted
    q = m.item_factors.astype(np.float64)
    target = 3
    cosine = q @ q[target] / (np.linalg.norm(q, axis=1) * np.linalg.norm(q[target]))
    cosine[target] = -np.inf
    want = np.argsort(-cosine, kind="stable")[:4]
    got = m.similar(m.item_ids[target], n=4)
    assert list(got.columns) == ["item", "title", "similarity"]
    assert list(got["item"]) == [m.item_ids[k] for k in want]
    np.testing.assert_allclose(got["similarity"], cosine[want], rtol=1e-5)
    # By title too, as `collabgpu similar --item` finds items.
    by_title = m.similar(f"film {m.item_ids[target]}", n=4)
    assert list(by_title["item"]) == list(got["item"])


def test_biases_are_the_lowest_and_highest_with_counts(fitted):
    df, m, _ = fitted
    table = m.biases(n=3)
    lowest = table[table["end"] == "lowest"]
    highest = table[table["end"] == "highest"]
    order = np.argsort(m.item_bias, kind="stable")
    assert list(lowest["item"]) == [m.item_ids[k] for k in order[:3]]
    assert set(highest["item"]) == {m.item_ids[k] for k in order[-3:]}
    counts = df.groupby("item")["rating"].agg(["mean", "size"])
    for row in table.itertuples():
        assert row.ratings == counts.loc[row.item, "size"]
        assert row.mean_rating == pytest.approx(counts.loc[row.item, "mean"])
    users = m.biases(n=2, users=True)
    assert "user" in users.columns and "title" not in users.columns


def test_save_and_load_give_the_same_model(fitted, tmp_path):
    df, m, _ = fitted
    path = tmp_path / "m.safetensors"
    m.save(path)
    loaded = cg.load_model(path)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(m, name))
    assert loaded.y_range == m.y_range and loaded.config["factors"] == 8
    users, items = df["user"][:20], df["item"][:20]
    np.testing.assert_array_equal(loaded.predict(users, items), m.predict(users, items))
    user = df["user"].iloc[0]
    pd.testing.assert_frame_equal(loaded.recommend(user, exclude=df), m.recommend(user))
    # Without exclude= a loaded model leaves out what its file records the user rated in
    # training: a part of what they rated in df (the rest was held out).
    listed = set(loaded.recommend(user, n=len(m.item_ids))["item"])
    rated = set(df.loc[df["user"] == user, "item"])
    assert len(listed) < len(m.item_ids) and not (set(m.item_ids) - listed) - rated


def test_arrays_and_renamed_columns_train_the_same_model(fitted):
    df, m, history = fitted
    arrays = cg.DotProductBias(n_factors=8, seed=3)
    arrays.fit((df["user"].to_numpy(), df["item"].to_numpy(), df["rating"].to_numpy()), **FAST)
    np.testing.assert_array_equal(arrays.history["valid_loss"], history["valid_loss"])
    renamed = df.rename(columns={"user": "u", "item": "i", "rating": "r"})
    named = cg.DotProductBias(n_factors=8, seed=3)
    named.fit(renamed, user_col="u", item_col="i", rating_col="r", **FAST)
    np.testing.assert_array_equal(named.item_factors, m.item_factors)


def test_integer_ids_spelled_as_text_are_the_same_ids(fitted):
    df, m, history = fitted
    spelled = df.assign(user=["0" + str(u) for u in df["user"]])
    other = cg.DotProductBias(n_factors=8, seed=3)
    other.fit(spelled, **FAST)
    np.testing.assert_array_equal(other.user_ids, m.user_ids)
    np.testing.assert_array_equal(other.history["valid_loss"], history["valid_loss"])


def test_seed_decides_the_model():
    df = small_frame()
    a = cg.DotProductBias(n_factors=4, seed=1).fit(df, **FAST)
    b = cg.DotProductBias(n_factors=4, seed=1).fit(df, **FAST)
    c = cg.DotProductBias(n_factors=4, seed=2).fit(df, **FAST)
    np.testing.assert_array_equal(a["valid_loss"], b["valid_loss"])
    assert not np.array_equal(a["valid_loss"], c["valid_loss"])


def test_options_reach_the_trainer():
    df = small_frame()
    m = cg.DotProductBias(n_factors=4, y_range=None)
    m.fit(df, optimizer="sgd", schedule="constant", lr=0.05, wd=0.0, **FAST)
    config = m.config
    assert (config["optimizer"], config["schedule"], config["y_range"]) == ("sgd", "constant", None)
    assert config["lr"] == pytest.approx(0.05) and config["batch_size"] == 16
    large = cg.DotProductBias()
    large.fit(df, recipe="ml-25m", bs=64, lr=0.5, progress=False)
    assert large.config["factors"] == 64 and large.config["optimizer"] == "rowwise-adagrad"
    # The recipe's 5 epochs (its early stop may end sooner); the given bs and lr win over it.
    assert large.config["epochs"] == 5 and 1 <= len(large.history) <= 5
    assert large.config["batch_size"] == 64 and large.config["lr"] == pytest.approx(0.5)


def test_bad_input_is_a_value_error_with_the_library_message():
    df = small_frame()
    m = cg.DotProductBias(n_factors=4)
    with pytest.raises(RuntimeError, match="not trained yet"):
        m.predict([1000], ["m00"])
    with pytest.raises(ValueError, match="no column 'rating'"):
        m.fit(df.drop(columns="rating"), progress=False)
    with pytest.raises(ValueError, match="row 2: the rating is NaN"):
        m.fit(df.assign(rating=[1.0, 2.0, np.nan] + [3.0] * (len(df) - 3)), progress=False)
    with pytest.raises(ValueError, match="--lr must be a positive number"):
        m.fit(df, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="valid-pct"):
        m.fit(df, valid_pct=1.5, progress=False)
    with pytest.raises(ValueError, match='optimizer="adam"'):
        m.fit(df, optimizer="adam", progress=False)
    with pytest.raises(ValueError, match="recipe="):
        m.fit(df, recipe="fastest", progress=False)
    with pytest.raises(ValueError, match="backend="):
        cg.DotProductBias(backend="tpu")
    m.fit(df, **FAST)
    with pytest.raises(ValueError, match="user \"5\" is not in the model"):
        m.predict([5], ["m00"])
    with pytest.raises(ValueError, match="no item matches"):
        m.similar("no such film")
    with pytest.raises(ValueError, match="of one length"):
        m.predict([1000, 1003], ["m00"])
    with pytest.raises(ValueError, match="--item-key title needs titles"):
        m.fit(df.drop(columns="title"), item_key="title", progress=False)
    with pytest.raises(ValueError, match="not a safetensors file|No such file"):
        cg.load_model("/nonexistent/model.safetensors")


def test_progress_prints_one_line_per_epoch_when_not_a_terminal(capsys):
    df = small_frame()
    cg.DotProductBias(n_factors=4).fit(df, epochs=2, bs=16)
    err = capsys.readouterr().err
    assert err.count("train_loss") == 2 and "epoch 1:" in err
    cg.DotProductBias(n_factors=4).fit(df, epochs=2, bs=16, progress=False)
    assert capsys.readouterr().err == ""


def test_ctrl_c_stops_fit_with_keyboard_interrupt_and_keeps_the_model():
    data = cg.load_ratings("synthetic:ml-100k")
    m = cg.DotProductBias(n_factors=8)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="fit stopped at epoch"):
            m.fit(data, epochs=5000, progress=False)
    finally:
        timer.cancel()
    assert m.history is not None and len(m.history) < 5000
    assert np.isfinite(m.user_factors).all()


def test_training_releases_the_gil():
    data = cg.load_ratings("synthetic:ml-100k")
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=tick)
    thread.start()
    started = time.monotonic()
    try:
        cg.DotProductBias(n_factors=8).fit(data, epochs=12, progress=False)
    finally:
        seconds = time.monotonic() - started
        stop.set()
        thread.join()
    during = [t for t in ticks if started < t < started + seconds]
    # Holding the GIL, fit would let the thread run only between its runs of batches, a few times
    # a second; released, the thread ticks about every 5 ms (200 a second on an idle machine).
    assert len(during) > 25 * seconds, f"{len(during)} ticks in {seconds:.2f} s of training"


def test_adapters_lists_dicts():
    listed = cg.adapters()
    assert isinstance(listed, list)
    for adapter in listed:
        assert {"name", "backend", "device_type", "features", "limits"} <= set(adapter)


def test_gpu_fit_matches_cpu_within_tolerance(gpu_ok):
    df = small_frame(n=2000)
    cpu = cg.DotProductBias(n_factors=8, backend="cpu").fit(df, **FAST)
    gpu = cg.DotProductBias(n_factors=8, backend="gpu").fit(df, **FAST)
    np.testing.assert_allclose(gpu["valid_loss"], cpu["valid_loss"], rtol=1e-4)

"""collabgpu: fastai's DotProductBias trained on the CPU or any Vulkan, Metal or DX12 GPU.

A thin layer over the collabgpu Rust library (the ``_native`` extension): loading, splitting,
training, prediction, rankings and the model file all come from there, so the numbers are the
``collabgpu`` CLI's. This module only turns pandas and numpy values into the library's and back,
and draws the progress line.

    import collabgpu as cg
    df = cg.load_ratings("ml-100k")
    m = cg.DotProductBias(n_factors=50, y_range=(0, 5.5), backend="cpu", seed=42)
    history = m.fit(df, valid_pct=0.2, epochs=5, lr=5e-3, wd=0.1, bs=64)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from collabgpu import _native

__all__ = [
    "DotProductBias",
    "adapters",
    "load_model",
    "load_ratings",
]

__version__ = "0.1.0"


def load_ratings(data: str = "ml-100k", item_key: str = "id", skip_bad_lines: bool = False) -> pd.DataFrame:
    """Reads ratings as ``collabgpu train --data DATA`` does, into a DataFrame.

    ``data`` is anything ``--data`` takes: a MovieLens directory (``u.data``, ``ratings.dat`` or
    ``ratings.csv`` inside), a ratings file, a data-set name from the download cache (``ml-100k``,
    ``ml-1m``, ... found in ``$COLLABGPU_DATA/NAME`` or downloaded and verified), or
    ``synthetic:ml-100k``. Columns: ``user``, ``item``, ``rating`` (float32), ``timestamp`` (when the
    source has them) and ``title`` (when it has titles), one row per rating in file order. Ids are
    raw ids: int64 when every id is an integer, else strings. ``item_key="title"`` keys items by
    title, as the fastai book does for ML-100K.
    """
    native = _native.load_ratings(str(data), item_key=item_key, skip_bad_lines=skip_bad_lines)
    return _frame(native)


def _id_table(raw: Sequence[str]) -> np.ndarray:
    """Raw ids as int64 when every one is an integer (the library stores them canonical), else
    as strings."""
    try:
        return np.array([int(x) for x in raw], dtype=np.int64)
    except ValueError:
        return np.array(raw, dtype=object)


def _frame(native: "_native.Ratings") -> pd.DataFrame:
    c = native.columns()
    users = np.frombuffer(c["users"], dtype=np.uint32)
    items = np.frombuffer(c["items"], dtype=np.uint32)
    columns = {
        "user": _id_table(c["user_ids"])[users],
        "item": _id_table(c["item_ids"])[items],
        "rating": np.frombuffer(c["ratings"], dtype=np.float32).copy(),
    }
    if c["timestamps"] is not None:
        columns["timestamp"] = np.frombuffer(c["timestamps"], dtype=np.int64).copy()
    if c["titles"] is not None:
        columns["title"] = np.array(c["titles"], dtype=object)[items]
    frame = pd.DataFrame(columns)
    frame.attrs["source"] = c["source"]
    if c["skipped"]:
        frame.attrs["skipped"] = dict(c["skipped"])
    return frame


def _ids(values: Any, name: str) -> Tuple[Optional[bytes], Optional[list]]:
    """A column of raw ids as the extension takes it: int64 bytes, or a list of strings."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"the {name} ids must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind in "iu":
        return np.ascontiguousarray(array, dtype=np.int64).tobytes(), None
    if array.dtype.kind == "b" or array.dtype.kind == "f":
        raise ValueError(
            f"the {name} ids are {array.dtype} values; give integers or strings "
            f"(e.g. df['{name}'].astype('int64') when the floats are whole numbers)"
        )
    text = []
    for row, value in enumerate(array.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise ValueError(f"row {row}: the {name} id is missing; every rating needs a {name} id")
        text.append(str(value))
    return None, text


def _ratings(
    data: Any,
    item_key: str,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    title_col: Optional[str] = "title",
    what: str = "ratings",
) -> "_native.Ratings":
    """``data`` (a DataFrame, or a ``(users, items, ratings)`` tuple of arrays) as the library's
    data set."""
    titles = None
    timestamps = None
    if isinstance(data, pd.DataFrame):
        missing = [c for c in (user_col, item_col, rating_col) if c not in data.columns]
        if missing:
            raise ValueError(
                f"the DataFrame has no column {', '.join(repr(c) for c in missing)} (its columns: "
                f"{', '.join(map(str, data.columns))}); name them with user_col=, item_col=, rating_col="
            )
        users, items, ratings = data[user_col], data[item_col], data[rating_col]
        if title_col is not None and title_col in data.columns:
            titles = [str(t) for t in data[title_col].tolist()]
        if "timestamp" in data.columns and data["timestamp"].dtype.kind in "iu":
            timestamps = np.ascontiguousarray(data["timestamp"], dtype=np.int64).tobytes()
        source = data.attrs.get("source", "a DataFrame")
    elif isinstance(data, (tuple, list)) and len(data) == 3:
        users, items, ratings = data
        source = "arrays"
    else:
        raise ValueError(
            f"{what}: give a DataFrame with columns user, item, rating (or user_col=, item_col=, "
            f"rating_col=), or a (users, items, ratings) tuple of arrays; got {type(data).__name__}"
        )
    ratings = np.asarray(ratings)
    if ratings.dtype.kind not in "iuf":
        raise ValueError(f"the ratings are {ratings.dtype} values; give numbers")
    users_int, users_text = _ids(users, "user")
    items_int, items_text = _ids(items, "item")
    return _native.ratings_from_columns(
        users_int=users_int,
        users_text=users_text,
        items_int=items_int,
        items_text=items_text,
        ratings=np.ascontiguousarray(ratings, dtype=np.float32).tobytes(),
        timestamps=timestamps,
        titles=titles,
        item_key=item_key,
        source=str(source),
    )


class _ProgressLine:
    """A tqdm-like line on stderr: redrawn in place in a terminal, one line per epoch elsewhere
    (notebooks, logs)."""

    def __init__(self) -> None:
        self.live = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.last_draw = 0.0

    def __call__(self, kind, epoch, epochs, done, total, loss, ratings_per_second, line) -> None:
        if kind == "batches":
            now = time.monotonic()
            if not self.live or (now - self.last_draw < 0.1 and done < total):
                return
            self.last_draw = now
            width = 30
            filled = int(width * done / max(total, 1))
            bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
            sys.stderr.write(
                f"\repoch {epoch + 1}/{epochs} [{bar[:width]}] {done}/{total} batches, "
                f"loss {loss:.4f}, {ratings_per_second:,.0f} ratings/s"
            )
            sys.stderr.flush()
        else:
            report = json.loads(line)
            valid = report.get("valid_loss")
            valid = "n/a" if valid is None else f"{valid:.6f}"
            text = (
                f"epoch {report['epoch']}: train_loss {report['train_loss']:.6f}, "
                f"valid_loss {valid}, {report['seconds']:.2f} s"
            )
            sys.stderr.write(("\r\x1b[K" if self.live else "") + text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


_HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "valid_rmse", "seconds"]


class DotProductBias:
    """fastai's DotProductBias: ``pred = lo + (hi - lo) * sigmoid(P[u] . Q[i] + bu[u] + bi[i])``.

    ``n_factors`` is ``K`` (``None``: the recipe's, 50 for fastai's); ``y_range`` the sigmoid range
    ``(lo, hi)``, or ``None`` for the raw score; ``backend`` ``"cpu"`` or ``"gpu"`` (``adapter=``
    picks a GPU by a part of its name, see :func:`adapters`); ``seed`` decides the split, the
    initialisation and the batch order; ``threads`` CPU threads (0: one per core; results do not
    depend on it).
    """

    def __init__(
        self,
        n_factors: Optional[int] = None,
        y_range: Optional[Tuple[float, float]] = (0.0, 5.5),
        backend: str = "cpu",
        seed: int = 42,
        *,
        init_std: Optional[float] = None,
        adapter: Optional[str] = None,
        threads: int = 0,
    ) -> None:
        if backend not in ("cpu", "gpu"):
            raise ValueError(f"backend={backend!r}: use 'cpu' or 'gpu'")
        if y_range is not None:
            try:
                lo, hi = y_range
                y_range = (float(lo), float(hi))
            except (TypeError, ValueError):
                raise ValueError(f"y_range={y_range!r}: give (lo, hi), e.g. (0, 5.5), or None") from None
        self.n_factors = n_factors
        self.y_range = y_range
        self.backend = backend
        self.seed = int(seed)
        self.init_std = init_std
        self.adapter = adapter
        self.threads = int(threads)
        self.history: Optional[pd.DataFrame] = None
        self.summary: Optional[dict] = None
        self._model: Optional[_native.Model] = None

    @classmethod
    def _from_native(cls, native: "_native.Model") -> "DotProductBias":
        config = json.loads(native.config_json())
        y_range = config.get("y_range")
        model = cls(
            n_factors=config.get("factors"),
            y_range=None if y_range is None else tuple(y_range),
            seed=config.get("seed", 42),
        )
        model._model = native
        return model

    def __repr__(self) -> str:
        state = "unfitted" if self._model is None else (
            f"{len(self._model.user_ids())} users, {len(self._model.item_ids())} items"
        )
        return (
            f"DotProductBias(n_factors={self.n_factors}, y_range={self.y_range}, "
            f"backend={self.backend!r}, seed={self.seed}; {state})"
        )

    def fit(
        self,
        ratings: Any,
        valid_pct: float = 0.2,
        epochs: Optional[int] = None,
        lr: Optional[float] = None,
        wd: Optional[float] = None,
        bs: Optional[int] = None,
        *,
        recipe: Optional[str] = None,
        optimizer: Optional[str] = None,
        schedule: Optional[str] = None,
        item_key: str = "id",
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
        split: str = "random",
        keep_last_batch: Optional[bool] = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Trains on ``ratings`` exactly as ``collabgpu train`` does, and returns the history.

        ``ratings``: a DataFrame with columns ``user``, ``item``, ``rating`` (other names with
        ``user_col=``, ``item_col=``, ``rating_col=``; a ``title`` column gives titles, a
        ``timestamp`` column allows ``split="time"``), or a ``(users, items, ratings)`` tuple of
        arrays. ``recipe`` (``"fastai"``, the default, or ``"ml-25m"``) fills every setting not given;
        ``optimizer`` is ``"adamw"`` or ``"sgd"``, ``schedule`` ``"one-cycle"`` or ``"constant"``;
        ``item_key="title"`` keys items by title. The history has one row per epoch: ``epoch``,
        ``train_loss``, ``valid_loss``, ``valid_rmse``, ``seconds``.

        The GIL is released while training. Ctrl-C stops after the current batches and raises
        KeyboardInterrupt; the model then holds the parameters trained so far and ``history`` the
        finished epochs.
        """
        native_ratings = _ratings(
            ratings, item_key, user_col=user_col, item_col=item_col, rating_col=rating_col
        )
        line = _ProgressLine() if progress else None
        try:
            result = _native.fit(
                native_ratings,
                recipe=recipe,
                factors=self.n_factors,
                epochs=epochs,
                lr=lr,
                wd=wd,
                bs=bs,
                optimizer=optimizer,
                schedule=schedule,
                y_range=self.y_range,
                init_std=self.init_std,
                seed=self.seed,
                keep_last_batch=keep_last_batch,
                valid_pct=float(valid_pct),
                split=split,
                backend=self.backend,
                adapter=self.adapter,
                threads=self.threads,
                observer=line,
            )
        finally:
            if line is not None:
                line.close()
        self._model = result["model"]
        self.n_factors = json.loads(self._model.config_json())["factors"]
        self.summary = result["summary"]
        epochs_seen = [json.loads(text) for text in result["epochs"]]
        self.history = pd.DataFrame(epochs_seen, columns=_HISTORY_COLUMNS)
        interrupted = result["interrupted"]
        if interrupted is not None:
            if isinstance(interrupted, KeyboardInterrupt) and result["stopped_at"] is not None:
                epoch, batch = result["stopped_at"]
                raise KeyboardInterrupt(
                    f"fit stopped at epoch {epoch}, batch {batch}: the model holds the parameters "
                    f"trained so far, and .history the {len(epochs_seen)} finished epoch(s)"
                ) from None
            raise interrupted
        return self.history

    def _fitted(self) -> "_native.Model":
        if self._model is None:
            raise RuntimeError("the model is not trained yet: call fit(ratings) or collabgpu.load_model(path)")
        return self._model

    def _data(self, data: Any) -> Optional["_native.Ratings"]:
        if data is None:
            return None
        return _ratings(data, self._fitted().item_key(), what="data")

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings (float32) for pairs of raw ids, as ``collabgpu predict`` gives each."""
        model = self._fitted()
        users = np.atleast_1d(np.asarray(users, dtype=object))
        items = np.atleast_1d(np.asarray(items, dtype=object))
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(
                f"users and items must be two 1-D sequences of one length, got shapes {users.shape} and {items.shape}"
            )
        out = model.predict([str(u) for u in users], [str(i) for i in items])
        return np.frombuffer(out, dtype=np.float32).copy()

    def _items_frame(self, rows, score: str) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["item", "title", score])
        frame["item"] = self._typed(frame["item"], self._fitted().item_ids())
        frame[score] = frame[score].astype(np.float32)
        return frame

    @staticmethod
    def _typed(column: pd.Series, all_ids: Sequence[str]) -> pd.Series:
        table = _id_table(all_ids)
        if table.dtype == np.int64:
            return column.astype(np.int64)
        return column

    def recommend(self, user: Any, n: int = 10, *, exclude: Any = None, exclude_rated: bool = True) -> pd.DataFrame:
        """The ``n`` items with the highest predicted rating for ``user`` (a raw id), leaving out the
        items the user rated in the ratings the model was fitted on (or in ``exclude``, a DataFrame;
        for a loaded model, in the training ratings its file records, as ``collabgpu recommend``
        does; ``exclude_rated=False`` keeps them). Columns: ``item``, ``title``, ``score``."""
        rows = self._fitted().recommend(str(user), int(n), self._data(exclude), bool(exclude_rated))
        return self._items_frame(rows, "score")

    def similar(self, item: Any, n: int = 10, *, min_ratings: Optional[int] = None, data: Any = None) -> pd.DataFrame:
        """The ``n`` items nearest to ``item`` (a raw id, or a part of its title) by cosine
        similarity of item factors; ``min_ratings`` keeps only items rated that often in the fitted
        ratings (or ``data``). Columns: ``item``, ``title``, ``similarity``."""
        rows = self._fitted().similar(
            str(item), int(n), None if min_ratings is None else int(min_ratings), self._data(data)
        )
        return self._items_frame(rows, "similarity")

    def biases(self, n: int = 10, *, users: bool = False, data: Any = None) -> pd.DataFrame:
        """The ``n`` lowest and ``n`` highest item (or user) biases. Columns: ``end`` (``lowest`` or
        ``highest``), ``item`` (or ``user``), ``title``, ``bias``, ``mean_rating``, ``ratings`` (the
        last two from the fitted ratings or ``data``, when known)."""
        model = self._fitted()
        who = "user" if users else "item"
        rows = model.biases(int(n), bool(users), self._data(data))
        frame = pd.DataFrame(rows, columns=["end", who, "title", "bias", "mean_rating", "ratings"])
        frame[who] = self._typed(frame[who], model.user_ids() if users else model.item_ids())
        frame["bias"] = frame["bias"].astype(np.float32)
        if users:
            frame = frame.drop(columns="title")
        return frame

    def plot_factors(self, path: str, labels: int = 40, *, data: Any = None) -> list:
        """Draws the item factors on their first two principal components to ``path`` (``.svg`` or
        ``.png``), as ``collabgpu plot --model`` does: fitted to the 1000 most-rated items of the
        fitted ratings (or ``data``) with the ``labels`` most rated titled. Returns each axis's
        share of the variance."""
        return self._fitted().plot_factors(str(path), int(labels), self._data(data))

    def item_pca(self, labels: int = 40, *, data: Any = None) -> pd.DataFrame:
        """The points :meth:`plot_factors` draws, for a picture of your own (matplotlib, say): one
        row per item the axes are fitted to, with ``item``, ``title``, ``pc1``, ``pc2`` and
        ``labelled`` (one of the ``labels`` items the picture titles). ``attrs["variance_share"]``
        holds each axis's share of the variance."""
        rows, shares = self._fitted().factor_coordinates(int(labels), self._data(data))
        frame = pd.DataFrame(rows, columns=["item", "title", "pc1", "pc2", "labelled"])
        frame["item"] = self._typed(frame["item"], self._fitted().item_ids())
        frame.attrs["variance_share"] = list(shares)
        return frame

    def _parameters(self):
        users, items, k, p, q, bu, bi = self._fitted().parameters()
        as_array = lambda b: np.frombuffer(b, dtype=np.float32).copy()  # noqa: E731
        return as_array(p).reshape(users, k), as_array(q).reshape(items, k), as_array(bu), as_array(bi)

    @property
    def user_factors(self) -> np.ndarray:
        """``P``, ``U x K`` float32, row ``d`` for the ``d``-th of :attr:`user_ids`."""
        return self._parameters()[0]

    @property
    def item_factors(self) -> np.ndarray:
        """``Q``, ``I x K`` float32, row ``d`` for the ``d``-th of :attr:`item_ids`."""
        return self._parameters()[1]

    @property
    def user_bias(self) -> np.ndarray:
        """``bu``, ``U`` float32."""
        return self._parameters()[2]

    @property
    def item_bias(self) -> np.ndarray:
        """``bi``, ``I`` float32."""
        return self._parameters()[3]

    @property
    def user_ids(self) -> np.ndarray:
        """Raw user ids in index order (the rows of :attr:`user_factors`)."""
        return _id_table(self._fitted().user_ids())

    @property
    def item_ids(self) -> np.ndarray:
        """Raw item ids (titles under ``item_key="title"``) in index order."""
        return _id_table(self._fitted().item_ids())

    @property
    def titles(self) -> Optional[np.ndarray]:
        """The title of each item index, when the data had titles."""
        titles = self._fitted().titles()
        return None if titles is None else np.array(titles, dtype=object)

    @property
    def config(self) -> dict:
        """The training configuration, as the model file records it."""
        return json.loads(self._fitted().config_json())

    def save(self, path: str) -> None:
        """Writes the CLI's model file (safetensors; ``collabgpu predict --model PATH`` reads it)."""
        self._fitted().save(str(path))


def load_model(path: str) -> DotProductBias:
    """Reads a model file written by :meth:`DotProductBias.save` or ``collabgpu train --out``."""
    return DotProductBias._from_native(_native.load_model(str(path)))


def adapters(wgpu_backend: Optional[str] = None) -> list:
    """Every GPU adapter wgpu finds, as ``collabgpu info --json`` lists them (name, backend,
    device_type, driver, features, scatter_add, limits)."""
    return json.loads(_native.adapters_json(wgpu_backend))

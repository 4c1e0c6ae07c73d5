"""Writes a ratings.csv in ML-25M's shape for the reading benchmark (BENCHMARKS.md, "Reading data").

25,000,095 lines after the header `userId,movieId,rating,timestamp`; 162,541 users (ids 1..162541,
each with at least 20 ratings, lines grouped by user as in the real file); 59,047 movies with ids
spread over 1..209171 and heavy-tailed popularity; half-star ratings written as "3.5" / "4.0";
Unix-second timestamps. Only the shape matters here: the ratings carry no planted model (that is
`collabgpu synth --preset ml-25m`).

    python scripts/make_ratings_csv.py OUT_DIR [SEED]
"""

import os
import sys

import numpy as np
import pandas as pd

N, U, I, MAX_MOVIE_ID = 25_000_095, 162_541, 59_047, 209_171


def main() -> None:
    out = sys.argv[1]
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
    os.makedirs(out, exist_ok=True)
    # Ratings per user: 20 each, the rest spread by a heavy-tailed activity weight.
    activity = rng.pareto(1.2, U) + 1e-3
    extra = rng.multinomial(N - 20 * U, activity / activity.sum())
    per_user = 20 + extra
    users = np.repeat(np.arange(1, U + 1, dtype=np.int32), per_user)
    # Items: Zipf-like popularity over the movie ids, every movie rated at least once.
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), I, replace=False)).astype(np.int32)
    popularity = 1.0 / np.arange(1, I + 1) ** 0.9
    rng.shuffle(popularity)
    picks = rng.choice(I, N - I, p=popularity / popularity.sum())
    items = movie_ids[np.concatenate([np.arange(I), picks])]
    rng.shuffle(items)
    ratings = rng.choice(np.arange(1, 11) / 2.0, N, p=[0.02, 0.03, 0.03, 0.07, 0.05, 0.2, 0.13, 0.26, 0.08, 0.13])
    timestamps = rng.integers(789_652_004, 1_574_327_703, N, dtype=np.int64)
    frame = pd.DataFrame({"userId": users, "movieId": items, "rating": ratings, "timestamp": timestamps})
    frame.to_csv(os.path.join(out, "ratings.csv"), index=False, float_format="%.1f", chunksize=1_000_000)


if __name__ == "__main__":
    main()

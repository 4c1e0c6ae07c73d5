"""The pandas side of the reading benchmark (BENCHMARKS.md, "Reading data"): reads a MovieLens
ratings.csv with the dtypes a recommender needs and prints rows, users, items and seconds.

    python scripts/read_csv_pandas.py PATH/ratings.csv
"""

import sys
import time

import pandas as pd


def main() -> None:
    start = time.perf_counter()
    frame = pd.read_csv(
        sys.argv[1],
        dtype={"userId": "int32", "movieId": "int32", "rating": "float32", "timestamp": "int64"},
    )
    seconds = time.perf_counter() - start
    print(f"rows {len(frame)} users {frame.userId.nunique()} items {frame.movieId.nunique()} read_csv {seconds:.2f} s")


if __name__ == "__main__":
    main()

"""A small dataset with a planted pattern every collaborative model should learn.

Two tastes: users 1..40 watch and like films 1..25, users 41..80 films 26..50, each user a
random 60 % of their block (seeded); films 51..60 are rarely rated noise. Genres follow the
blocks too ("Comedy" for 1..25, "Horror" for 26..50), so content models see the pattern.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

USERS, FILMS, BLOCK = 80, 60, 25


def planted_frames(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, USERS + 1):
        block = np.arange(1, BLOCK + 1) if user <= USERS // 2 else np.arange(BLOCK + 1, 2 * BLOCK + 1)
        for film in rng.choice(block, int(0.6 * BLOCK), replace=False):
            rows.append((user, int(film), float(rng.choice([4.0, 4.5, 5.0])), int(rng.integers(1, 10**6)) * 1000))
        noise = int(rng.integers(2 * BLOCK + 1, FILMS + 1))
        rows.append((user, noise, float(rng.choice([1.0, 2.0])), int(rng.integers(1, 10**6)) * 1000))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"])
    ratings = ratings.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)
    movies = pd.DataFrame({
        "movie_id": np.arange(1, FILMS + 1),
        "title": [f"Film {i}" for i in range(1, FILMS + 1)],
        "year": pd.array([1990 + i % 30 for i in range(1, FILMS + 1)], dtype="Int64"),
        "genres": [["Comedy"] if i <= BLOCK else ["Horror"] if i <= 2 * BLOCK else ["Documentary"]
                   for i in range(1, FILMS + 1)],
    })
    tags = pd.DataFrame({"user_id": [1, 41], "movie_id": [1, 26], "tag": ["funny", "scary"],
                         "ts": [1000, 2000]})
    return {"ratings": ratings, "movies": movies, "tags": tags}


def indexable_frames(seed: int = 0) -> dict[str, pd.DataFrame]:
    """``planted_frames`` with the film features ``cinerec index`` reads (count, mean; the mean
    stands in for the Bayesian average)."""
    frames = planted_frames(seed)
    movies, ratings = frames["movies"], frames["ratings"]
    movies["rating_count"] = movies["movie_id"].map(ratings.groupby("movie_id").size()).fillna(0).astype(int)
    movies["rating_mean"] = movies["movie_id"].map(ratings.groupby("movie_id")["rating"].mean())
    movies["bayesian_avg"] = movies["rating_mean"]
    return frames


def block_of(film: int) -> int:
    return 0 if film <= BLOCK else 1 if film <= 2 * BLOCK else 2

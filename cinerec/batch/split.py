"""Train/test splits of the evaluation protocol (ARCHITECTURE.md), deterministic by seed.

- ``stratified``: per user, a random 75 % of their ratings train and 25 % test (seed 42).
- ``temporal``: per user, the last 20 % of their ratings by time are the test set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PROTOCOLS = ("stratified", "temporal")


def stratified_split(ratings: pd.DataFrame, *, test_fraction: float = 0.25,
                     seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    shuffled = ratings.assign(_key=rng.random(len(ratings)))
    return _cut(shuffled, "_key", 1.0 - test_fraction)


def temporal_split(ratings: pd.DataFrame, *, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Ties in time are broken by movie id so the split does not depend on row order.
    ordered = ratings.assign(_key=ratings["ts"].astype("int64") * 10**7 + ratings["movie_id"].astype("int64"))
    return _cut(ordered, "_key", 1.0 - test_fraction)


def split(ratings: pd.DataFrame, protocol: str, *, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    if protocol == "stratified":
        return stratified_split(ratings, seed=seed)
    if protocol == "temporal":
        return temporal_split(ratings)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def _cut(frame: pd.DataFrame, key: str, train_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the first round(n * train_fraction) rows by ``key`` train, the rest test."""
    rank = frame.groupby("user_id")[key].rank(method="first") - 1
    size = frame.groupby("user_id")[key].transform("size")
    in_train = rank < np.round(size * train_fraction)
    clean = frame.drop(columns=key)
    return clean[in_train].reset_index(drop=True), clean[~in_train].reset_index(drop=True)

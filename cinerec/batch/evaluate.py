"""The evaluation protocol (ARCHITECTURE.md), run the same way for every recommender.

Split per user (``stratified`` 75/25 seed 42, or ``temporal`` last 20 %), train on the train
part, rank *all* items for each test user with their training items excluded, and score the
top k against the held-out items (every one relevant, binary gain). Rating predictors are
also scored by RMSE/MAE on the held-out ratings of films seen in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cinerec.core import metrics

from .interactions import Interactions, frames_item_metadata
from .recommenders import Recommender, create
from .split import split

CURVE_K = 20  # precision/recall curves for k = 1..20 in the report


@dataclass
class Holdout:
    """One split, ready to train on and score against."""

    protocol: str
    train: Interactions
    test: pd.DataFrame
    relevant: dict[int, set[int]]      # user row -> held-out item columns
    test_users: np.ndarray             # user rows with at least one held-out item

    @classmethod
    def build(cls, frames: dict[str, pd.DataFrame], protocol: str, *, seed: int = 42) -> Holdout:
        ratings = frames["ratings"]
        train, test = split(ratings, protocol, seed=seed)
        users = np.sort(ratings["user_id"].unique())
        items = np.sort(ratings["movie_id"].unique())
        meta = frames_item_metadata(frames, items)
        inter = Interactions.build(train, users, items, meta)
        rows, cols = inter.user_index(test["user_id"]), inter.item_index(test["movie_id"])
        relevant: dict[int, set[int]] = {}
        for r, c in zip(rows, cols):
            relevant.setdefault(int(r), set()).add(int(c))
        return cls(protocol, inter, test.assign(_row=rows, _col=cols), relevant,
                   np.array(sorted(relevant), dtype=np.int64))


def evaluate_model(model: Recommender, holdout: Holdout, k: int = 10) -> dict:
    """Trains ``model`` on the holdout's train part and returns its metrics."""
    started = time.perf_counter()
    model.fit(holdout.train)
    train_seconds = time.perf_counter() - started
    result = score_model(model, holdout, k)
    result["train_seconds"] = round(train_seconds, 3)
    return result


def score_model(model: Recommender, holdout: Holdout, k: int = 10) -> dict:
    """Metrics of an already trained ``model`` on the holdout."""
    depth = max(k, CURVE_K)
    top = model.recommend(holdout.test_users, depth)
    ranked = {int(u): list(map(int, row)) for u, row in zip(holdout.test_users, top)}
    relevant = holdout.relevant
    train_binary = holdout.train.binary
    popularity = np.asarray(train_binary.sum(axis=0)).ravel() / train_binary.shape[0]
    result = {
        "ndcg": metrics.ndcg_at_k(ranked, relevant, k),
        "precision": metrics.precision_at_k(ranked, relevant, k),
        "recall": metrics.recall_at_k(ranked, relevant, k),
        "map": metrics.map_at_k(ranked, relevant, k),
        "coverage": metrics.catalog_coverage(ranked, train_binary.shape[1], k),
        "novelty": metrics.novelty(ranked, dict(enumerate(popularity)), k),
        "users": len(holdout.test_users),
        "curve": {"precision": [metrics.precision_at_k(ranked, relevant, n) for n in range(1, CURVE_K + 1)],
                  "recall": [metrics.recall_at_k(ranked, relevant, n) for n in range(1, CURVE_K + 1)]},
    }
    if model.predicts_ratings:
        test = holdout.test
        predicted = model.predict(test["_row"].to_numpy(), test["_col"].to_numpy())
        known = ~np.isnan(predicted)
        actual = test["rating"].to_numpy()[known]
        result.update({"rmse": metrics.rmse(predicted[known], actual),
                       "mae": metrics.mae(predicted[known], actual),
                       "rated_pairs": int(known.sum()), "unrated_pairs": int((~known).sum())})
    return result


def evaluate(frames: dict[str, pd.DataFrame], *, protocol: str, k: int, models: list[str],
             seed: int = 42, progress=None) -> dict:
    holdout = Holdout.build(frames, protocol, seed=seed)
    results = {}
    for name in models:
        results[name] = evaluate_model(create(name), holdout, k)
        if progress:
            progress(name, results[name])
    return {"protocol": protocol, "k": k, "seed": seed, "users": len(holdout.test_users),
            "items": int(holdout.train.matrix.shape[1]), "train_ratings": int(holdout.train.matrix.nnz),
            "test_ratings": len(holdout.test), "models": results}

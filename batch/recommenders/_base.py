"""The one interface every approach implements; evaluation and serving only see this."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..interactions import Interactions


class Recommender(ABC):
    """fit on an ``Interactions`` matrix, then score users (rows) against every item (column)."""

    name = "base"
    predicts_ratings = False   # True when ``predict`` estimates ratings (RMSE/MAE apply)

    def __init__(self, **params):
        self.params = params
        self.train: Interactions | None = None

    def fit(self, train: Interactions) -> Recommender:
        self.train = train
        self._fit(train)
        return self

    @abstractmethod
    def _fit(self, train: Interactions) -> None: ...

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Higher is better; shape (len(users), n_items). ``users`` are row indices."""

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not predict ratings")

    def recommend(self, users: np.ndarray, k: int, *, exclude_seen: bool = True,
                  batch: int = 256) -> np.ndarray:
        """Top-k item indices per user, best first, never an item the user rated in training."""
        out = np.empty((len(users), k), dtype=np.int64)
        for start in range(0, len(users), batch):
            rows = users[start:start + batch]
            scores = np.asarray(self.score(rows), dtype=np.float64)
            if exclude_seen:
                seen = self.train.matrix[rows]
                scores[seen.nonzero()] = -np.inf
            top = np.argpartition(-scores, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            out[start:start + len(rows)] = np.take_along_axis(top, order, axis=1)
        return out

"""Alternating least squares: implicit (ranking) and explicit (rating prediction).

Implicit ALS (Hu, Koren & Volinsky 2008) alternates the fold-in solve of ``core.foldin``:
users against fixed items, then items against fixed users. Two trainers give the same model:
``trainer = "spark"`` runs Spark MLlib's ALS (``implicitPrefs=True``), ``trainer = "numpy"``
runs the same equations on one machine (faster on small data). Explicit ALS is Spark MLlib's
(``implicitPrefs=False``) and predicts ratings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.foldin import FoldIn

from ..interactions import Interactions
from ._base import Recommender


class FactorModel(Recommender):
    """score(u, i) = x_u · y_i."""

    user_factors: np.ndarray
    item_factors: np.ndarray

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T


class ImplicitALS(FactorModel):
    name = "als"

    def _fit(self, train: Interactions) -> None:
        p = self.params
        rank, reg = int(p.get("rank", 64)), float(p.get("regularization", 0.05))
        alpha, iterations = float(p.get("alpha", 10.0)), int(p.get("iterations", 15))
        seed = int(p.get("seed", 42))
        if p.get("trainer", "numpy") == "spark":
            self.user_factors, self.item_factors = _spark_als(
                train, rank=rank, reg=reg, alpha=alpha, iterations=iterations, seed=seed, implicit=True)
            return
        rng = np.random.default_rng(seed)
        ratings = train.matrix.tocsr().astype(np.float64)
        by_item = ratings.T.tocsr()
        x = rng.normal(0.0, 0.01, (ratings.shape[0], rank))
        y = rng.normal(0.0, 0.01, (ratings.shape[1], rank))
        for _ in range(iterations):
            x = solve_rows(y, ratings, reg, alpha)
            y = solve_rows(x, by_item, reg, alpha)
        self.user_factors, self.item_factors = x, y


class ExplicitALS(FactorModel):
    name = "als-explicit"
    predicts_ratings = True

    def _fit(self, train: Interactions) -> None:
        p = self.params
        self.user_factors, self.item_factors = _spark_als(
            train, rank=int(p.get("rank", 10)), reg=float(p.get("regularization", 0.1)), alpha=1.0,
            iterations=int(p.get("iterations", 15)), seed=int(p.get("seed", 42)), implicit=False)
        self.known_items = np.asarray(train.matrix.getnnz(axis=0)) > 0

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings; NaN for films without training ratings (no factor to use)."""
        raw = np.einsum("nd,nd->n", self.user_factors[users], self.item_factors[items])
        return np.where(self.known_items[items], np.clip(raw, 0.5, 5.0), np.nan)


def solve_rows(fixed: np.ndarray, ratings: sp.csr_matrix, reg: float, alpha: float) -> np.ndarray:
    """One half-step of implicit ALS: the fold-in solve for every row of ``ratings``."""
    fold = FoldIn(fixed, reg, alpha)
    out = np.zeros((ratings.shape[0], fixed.shape[1]))
    for row in range(ratings.shape[0]):
        start, end = ratings.indptr[row], ratings.indptr[row + 1]
        if end > start:
            out[row] = fold.user_vector(ratings.indices[start:end], ratings.data[start:end])
    return out


def _spark_als(train: Interactions, *, rank: int, reg: float, alpha: float, iterations: int,
               seed: int, implicit: bool) -> tuple[np.ndarray, np.ndarray]:
    from pyspark.ml.recommendation import ALS

    from ..spark import spark_session

    spark = spark_session()
    coo = train.matrix.tocoo()
    frame = spark.createDataFrame(pd.DataFrame({"user": coo.row.astype(np.int32),
                                                "item": coo.col.astype(np.int32),
                                                "rating": coo.data.astype(np.float32)}))
    model = ALS(rank=rank, maxIter=iterations, regParam=reg, alpha=alpha, implicitPrefs=implicit,
                userCol="user", itemCol="item", ratingCol="rating", seed=seed,
                coldStartStrategy="nan").fit(frame)
    return (_dense(model.userFactors.toPandas(), train.matrix.shape[0], rank),
            _dense(model.itemFactors.toPandas(), train.matrix.shape[1], rank))


def _dense(factors: pd.DataFrame, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows -> a dense array; ids without a factor stay zero."""
    out = np.zeros((rows, rank))
    if len(factors):
        out[factors["id"].to_numpy()] = np.stack(factors["features"].to_numpy())
    return out

"""Alternating least squares: implicit (ranking) and explicit (rating prediction).

Implicit ALS (Hu, Koren & Volinsky 2008) alternates the fold-in solve of ``core.foldin``:
users against fixed items, then items against fixed users. Two trainers give the same model:
``trainer = "spark"`` runs Spark MLlib's ALS (``implicitPrefs=True``), ``trainer = "numpy"``
runs the same equations on one machine (faster on small data). With ``half_life_days`` the numpy
trainer weighs each rating by its age (``core.foldin``: the same w_ui in both half-steps; MLlib
cannot express a fading preference, so the Spark trainer refuses a half-life). Explicit ALS is
Spark MLlib's (``implicitPrefs=False``) and predicts ratings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.core.foldin import FoldIn, recency_weights

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

    @property
    def regularization(self) -> float:
        return float(self.params.get("regularization", 0.05))

    @property
    def alpha(self) -> float:
        return float(self.params.get("alpha", 10.0))

    @property
    def half_life_days(self) -> float:
        """Forgetting: a rating's weight halves every this many days before the user's latest (0: off)."""
        return float(self.params.get("half_life_days", 0.0))

    def fold_in(self) -> FoldIn:
        """The solve that re-computes a user's vector against this model's item factors."""
        return FoldIn(self.item_factors, self.regularization, self.alpha, self.half_life_days)

    def refold(self, train: Interactions) -> ImplicitALS:
        """Every user's vector solved from ``train`` against the fit item factors (the fold-in)."""
        self.train = train
        ratings = train.matrix.tocsr().astype(np.float64)
        ratings.sort_indices()
        weights = recency_weight_matrix(ratings, train.times, self.half_life_days) if self.half_life_days else None
        self.user_factors = solve_rows(self.item_factors, ratings, self.regularization, self.alpha, weights)
        return self

    def _fit(self, train: Interactions) -> None:
        p = self.params
        rank, reg, alpha = int(p.get("rank", 64)), self.regularization, self.alpha
        iterations, seed = int(p.get("iterations", 15)), int(p.get("seed", 42))
        ratings = train.matrix.tocsr().astype(np.float64)
        ratings.sort_indices()
        weights = recency_weight_matrix(ratings, train.times, self.half_life_days) if self.half_life_days else None
        if p.get("trainer", "numpy") == "spark":
            if weights is not None:
                raise ValueError('forgetting (half_life_days) trains with trainer = "numpy": MLlib\'s implicit ALS '
                                 "fixes the preference of a rated film at 1")
            self.user_factors, self.item_factors = _spark_als(
                ratings, rank=rank, reg=reg, alpha=alpha, iterations=iterations, seed=seed, implicit=True)
            return
        rng = np.random.default_rng(seed)
        by_item, item_weights = ratings.T.tocsr(), (weights.T.tocsr() if weights is not None else None)
        x = rng.normal(0.0, 0.01, (ratings.shape[0], rank))
        y = rng.normal(0.0, 0.01, (ratings.shape[1], rank))
        for _ in range(iterations):  # items first, like MLlib: the final x is solved against the final y
            y = solve_rows(x, by_item, reg, alpha, item_weights)
            x = solve_rows(y, ratings, reg, alpha, weights)
        self.user_factors, self.item_factors = x, y


class ExplicitALS(FactorModel):
    """Rating prediction: baseline biases plus Spark MLlib explicit ALS on what they leave.

        r̂_ui = μ + b_u + b_i + x_uᵀ y_i
    with b_i = Σ_u (r_ui − μ) / (n_i + λ_i) and b_u = Σ_i (r_ui − μ − b_i) / (n_u + λ_u)
    (Koren 2008's regularised baseline), and ALS fit to the residuals r_ui − μ − b_u − b_i.
    Films without training ratings fall back to μ + b_u.
    """

    name = "als-explicit"
    predicts_ratings = True

    def _fit(self, train: Interactions) -> None:
        p = self.params
        ratings = train.matrix.tocoo()
        rows, cols, values = ratings.row, ratings.col, ratings.data.astype(np.float64)
        n_users, n_items = train.matrix.shape
        self.mean = values.mean()
        item_counts = np.bincount(cols, minlength=n_items)
        self.item_bias = (np.bincount(cols, values - self.mean, n_items)
                          / (item_counts + float(p.get("item_bias_reg", 10.0))))
        residual = values - self.mean - self.item_bias[cols]
        self.user_bias = (np.bincount(rows, residual, n_users)
                          / (np.bincount(rows, minlength=n_users) + float(p.get("user_bias_reg", 15.0))))
        residual = residual - self.user_bias[rows]
        residuals = sp.csr_matrix((residual, (rows, cols)), shape=train.matrix.shape)
        self.user_factors, self.item_factors = _spark_als(
            residuals, rank=int(p.get("rank", 10)), reg=float(p.get("regularization", 0.1)), alpha=1.0,
            iterations=int(p.get("iterations", 15)), seed=int(p.get("seed", 42)), implicit=False)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raw = (self.mean + self.user_bias[users] + self.item_bias[items]
               + np.einsum("nd,nd->n", self.user_factors[users], self.item_factors[items]))
        return np.clip(raw, 0.5, 5.0)

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.mean + self.user_bias[users][:, None] + self.item_bias[None, :]
                + self.user_factors[users] @ self.item_factors.T)


def recency_weight_matrix(ratings: sp.csr_matrix, times: sp.csr_matrix | None,
                          half_life_days: float) -> sp.csr_matrix:
    """w_ui of every rating, in the (index-sorted) ratings' sparsity (``core.foldin.recency_weights``,
    t_u the user's latest rating)."""
    if times is None:
        raise ValueError("forgetting (half_life_days) trains on rating times; these interactions have none")
    times = times.tocsr().copy()
    times.sort_indices()
    if not (np.array_equal(ratings.indptr, times.indptr) and np.array_equal(ratings.indices, times.indices)):
        raise ValueError("rating times do not have the ratings' sparsity")
    counts = np.diff(times.indptr)
    rated = counts > 0
    latest = np.maximum.reduceat(times.data, times.indptr[:-1][rated])      # t_u of each user who rated
    weights = times.astype(np.float64)
    weights.data = recency_weights(times.data, half_life_days, np.repeat(latest, counts[rated]))
    return weights


def solve_rows(fixed: np.ndarray, ratings: sp.csr_matrix, reg: float, alpha: float,
               weights: sp.csr_matrix | None = None) -> np.ndarray:
    """One half-step of implicit ALS: the fold-in solve for every row of ``ratings`` (``weights``:
    each rating's w_ui in the same sparsity; None: all 1)."""
    fold = FoldIn(fixed, reg, alpha)
    out = np.zeros((ratings.shape[0], fixed.shape[1]))
    for row in range(ratings.shape[0]):
        start, end = ratings.indptr[row], ratings.indptr[row + 1]
        if end > start:
            w = weights.data[start:end] if weights is not None else np.ones(end - start)
            out[row] = fold.solve(ratings.indices[start:end], ratings.data[start:end], w)
    return out


def _spark_als(matrix: sp.spmatrix, *, rank: int, reg: float, alpha: float, iterations: int,
               seed: int, implicit: bool) -> tuple[np.ndarray, np.ndarray]:
    from pyspark.ml.recommendation import ALS

    from cinerec.platform.spark import spark_session

    spark = spark_session()
    coo = matrix.tocoo()
    frame = spark.createDataFrame(pd.DataFrame({"user": coo.row.astype(np.int32),
                                                "item": coo.col.astype(np.int32),
                                                "rating": coo.data.astype(np.float32)}))
    model = ALS(rank=rank, maxIter=iterations, regParam=reg, alpha=alpha, implicitPrefs=implicit,
                userCol="user", itemCol="item", ratingCol="rating", seed=seed,
                coldStartStrategy="nan").fit(frame)
    return (_dense(model.userFactors.toPandas(), matrix.shape[0], rank),
            _dense(model.itemFactors.toPandas(), matrix.shape[1], rank))


def _dense(factors: pd.DataFrame, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows -> a dense array; ids without a factor stay zero."""
    out = np.zeros((rows, rank))
    if len(factors):
        out[factors["id"].to_numpy()] = np.stack(factors["features"].to_numpy())
    return out

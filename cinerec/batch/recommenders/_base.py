"""The one interface every approach implements; evaluation and serving only see this."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from cinerec.core.blend import user_inputs

from ..interactions import Interactions


class Recommender(ABC):
    """fit on an ``Interactions`` matrix, then score users (rows) against every item (column)."""

    name = "base"
    predicts_ratings = False   # True when ``predict`` estimates ratings (RMSE/MAE apply)

    def __init__(self, **params) -> None:
        self.params = params
        self.train: Interactions | None = None

    @property
    def fitted(self) -> Interactions:
        """``train``, for what needs a fit model."""
        if self.train is None:
            raise RuntimeError(f"{self.name} is not fit: call fit() first")
        return self.train

    def fit(self, train: Interactions) -> Recommender:
        self.train = train
        self._fit(train)
        return self

    @abstractmethod
    def _fit(self, train: Interactions) -> None: ...

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Higher is better; shape (len(users), n_items). ``users`` are row indices."""

    def refold(self, train: Interactions) -> Recommender:
        """The users' side recomputed from ``train`` (same users and items) with the items' side
        kept as fit: what a stream does with new ratings between two trainings."""
        raise NotImplementedError(f"{self.name} cannot take new ratings without a fit")

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
                seen = self.fitted.matrix[rows]
                scores[seen.nonzero()] = -np.inf
            top = np.argpartition(-scores, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            out[start:start + len(rows)] = np.take_along_axis(top, order, axis=1)
        return out


class ItemItemModel(Recommender):
    """A model whose score is a sum over the user's rated films: score(u) = in_u · W.

    W is item x item (row j: what having rated film j adds to every film); ``in_u`` is 1 per rated
    film (``user_input = "binary"``) or the rating centred on the user's mean plus 0.5
    (``"centred"``, ``core.blend.user_inputs``). Served from each film's ``size`` largest |W_j·|
    (``neighbour_lists``), so the API needs only the user's rated films and those lists.
    """

    user_input = "binary"

    @abstractmethod
    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense rows W[rows, :]."""

    def refold(self, train: Interactions) -> ItemItemModel:
        """An item-item model's user side is the user's ratings themselves."""
        self.train = train
        return self

    def inputs(self, users: np.ndarray) -> sp.csr_matrix:
        """in_u of each user (rows of the training matrix)."""
        ratings = self.fitted.matrix[users].tocsr().astype(np.float64)
        out = ratings.copy()
        for row in range(out.shape[0]):
            lo, hi = out.indptr[row], out.indptr[row + 1]
            out.data[lo:hi] = user_inputs(ratings.data[lo:hi], self.user_input)
        return out

    def neighbour_lists(self, size: int, block: int = 1024) -> sp.csr_matrix:
        """W with only each row's ``size`` largest |w| kept (ties: the lower column)."""
        n = self.fitted.matrix.shape[1]
        keep = min(size, n)
        rows, cols, values = [], [], []
        for start in range(0, n, block):
            index = np.arange(start, min(start + block, n))
            dense = np.asarray(self.weight_rows(index), dtype=np.float64)
            top = np.argsort(-np.abs(dense), axis=1, kind="stable")[:, :keep]
            picked = np.take_along_axis(dense, top, axis=1)
            nonzero = picked != 0
            rows.append(np.broadcast_to(index[:, None], top.shape)[nonzero])
            cols.append(top[nonzero])
            values.append(picked[nonzero])
        return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

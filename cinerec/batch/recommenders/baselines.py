"""Most-popular and item-kNN (cosine or Pearson similarity) baselines."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ._base import ItemItemModel, Recommender


class MostPopular(Recommender):
    """Score = number of training ratings of the item; the same list for everyone."""

    name = "popular"

    def _fit(self, train: Interactions) -> None:
        self.counts = np.asarray(train.binary.sum(axis=0)).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))


class ItemKNN(ItemItemModel):
    """Item-based kNN (Sarwar et al. 2001): score(u, i) = Σ_{j ∈ I_u} s(i, j), top-k neighbours.

    ``similarity = "cosine"``: cosine of binary item columns.
    ``similarity = "pearson"``: cosine of item columns centred on each item's mean rating
    over the users who rated it (Pearson correlation on co-rated entries, the usual
    item-item approximation).
    """

    name = "itemknn"

    def _fit(self, train: Interactions) -> None:
        similarity = self.params.get("similarity", "cosine")
        neighbours = int(self.params.get("neighbours", 100))
        if similarity == "cosine":
            x = train.binary.tocsc().astype(np.float64)
        elif similarity == "pearson":
            x = train.matrix.tocsc().astype(np.float64)
            counts = np.diff(x.indptr)
            means = np.divide(np.asarray(x.sum(axis=0)).ravel(), counts, out=np.zeros(x.shape[1]),
                              where=counts > 0)
            x.data -= np.repeat(means, counts)
        else:
            raise ValueError(f"unknown similarity {similarity!r}: cosine or pearson")
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        sim = (x.T @ x).toarray() / np.outer(norms, norms)
        np.fill_diagonal(sim, 0.0)
        self.similarity = _top_k_columns(sim, neighbours)

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.fitted.binary[users] @ self.similarity).toarray()

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.similarity[rows].toarray()


def _top_k_columns(sim: np.ndarray, k: int) -> sp.csr_matrix:
    """Keeps the k largest entries of each column (each item's k nearest neighbours)."""
    n = sim.shape[0]
    k = min(k, n - 1)
    rows = np.argpartition(-sim, k, axis=0)[:k]                      # (k, n)
    cols = np.broadcast_to(np.arange(n), rows.shape)
    values = sim[rows, cols]
    keep = values > 0
    return sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=sim.shape)


class RP3Beta(ItemItemModel):
    """RP3beta (Paudel et al., "Updatable, Accurate, Diverse, and Scalable Recommendations for
    Interactive Applications", TiiS 2017): three-step random walk user -> item -> user -> item
    with transition probabilities raised to α, each target item's weight divided by its
    popularity^β to favour the long tail. W = (P_iu^α · P_ui^α) / pop^β, top-k per item."""

    name = "rp3beta"

    def _fit(self, train: Interactions) -> None:
        alpha, beta = float(self.params.get("alpha", 1.0)), float(self.params.get("beta", 0.5))
        x = train.binary.astype(np.float64)
        user_to_item = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1)) @ x
        item_to_user = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1)) @ x.T.tocsr()
        user_to_item.data **= alpha
        item_to_user.data **= alpha
        popularity = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1) ** beta
        walk = (item_to_user @ user_to_item).toarray() / popularity[None, :]
        np.fill_diagonal(walk, 0.0)
        self.weights = _top_k_columns(walk.T, int(self.params.get("neighbours", 200))).T.tocsr()

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.fitted.binary[users] @ self.weights).toarray()

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.weights[rows].toarray()

"""Content-based: TF-IDF profiles of genres, tags and decade; users are rating-weighted sums.

    v_i = l2-normalised TF-IDF of item i's tokens
    profile_u = Σ_{i ∈ I_u} (r_ui − r̄_u + 0.5) v_i      (liked-more items weigh more)
    score(u, j) = v_j · profile_u
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ._base import ItemItemModel

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]+")


def item_tokens(genres, tags: str, year) -> list[str]:
    tokens = [f"genre:{g.lower()}" for g in genres]
    tokens += [f"tag:{w}" for w in _WORD.findall(str(tags).lower())]
    if year is not None and year == year:  # not NaN / NA
        tokens.append(f"decade:{int(year) // 10 * 10}")
    return tokens


def tfidf(documents: list[list[str]]) -> sp.csr_matrix:
    vocabulary: dict[str, int] = {}
    rows, cols, values = [], [], []
    for row, tokens in enumerate(documents):
        for token in tokens:
            rows.append(row)
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
            values.append(1.0)
    counts = sp.csr_matrix((values, (rows, cols)), shape=(len(documents), max(len(vocabulary), 1)))
    counts.sum_duplicates()
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = np.log((1 + len(documents)) / (1 + df)) + 1.0
    weighted = counts.multiply(idf).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ weighted


class ContentTFIDF(ItemItemModel):
    """An item-item model too: score(u, ·) = Σ_i in_u(i) v_i·V (W = VVᵀ), centred inputs."""

    name = "content"
    user_input = "centred"

    def _fit(self, train: Interactions) -> None:
        meta = train.items
        years = meta["year"] if "year" in meta else [None] * len(meta)
        docs = [item_tokens(g, t, y) for g, t, y in zip(meta["genres"], meta["tags"], years)]
        self.vectors = tfidf(docs)                                   # (items, vocabulary)
        self.profiles = self.inputs(np.arange(train.matrix.shape[0])) @ self.vectors   # (users, vocabulary)

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return (self.vectors[rows] @ self.vectors.T).toarray()

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.vectors.T).toarray()

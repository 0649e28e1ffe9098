"""Content-based: TF-IDF profiles of genres, tags and decade; users are rating-weighted sums.

    v_i = l2-normalised TF-IDF of item i's tokens, or, where the data has the Tag Genome and the
          film a relevance vector g_i, [v_i, genome_weight · g_i / |g_i|] re-normalised
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


def with_genome(vectors: sp.csr_matrix, meta, weight: float) -> sp.csr_matrix:
    """Each item's row [v_i, weight · g_i / |g_i|], l2-normalised again, where the item has a Tag
    Genome vector g_i (``meta["genome"]``, ``batch.interactions.item_metadata``); other rows keep v_i
    (and zeros in the genome columns). ``vectors`` itself when the weight is 0 or there is no genome."""
    if not weight or "genome" not in meta:
        return vectors
    covered = np.array([i for i, g in enumerate(meta["genome"]) if g is not None and len(g)], dtype=np.int64)
    if not len(covered):
        return vectors
    relevance = np.vstack([np.asarray(meta["genome"].iloc[i], dtype=np.float64) for i in covered])
    norms = np.linalg.norm(relevance, axis=1, keepdims=True)
    relevance = weight * relevance / np.where(norms > 0, norms, 1.0)
    block = sp.csr_matrix((relevance.ravel(), (np.repeat(covered, relevance.shape[1]),
                                               np.tile(np.arange(relevance.shape[1]), len(covered)))),
                          shape=(vectors.shape[0], relevance.shape[1]))
    stacked = sp.hstack([vectors, block]).tocsr()
    scale = np.ones(vectors.shape[0])
    row_norms = np.sqrt(np.asarray(stacked[covered].multiply(stacked[covered]).sum(axis=1)).ravel())
    scale[covered] = 1.0 / np.where(row_norms > 0, row_norms, 1.0)
    return (sp.diags(scale) @ stacked).tocsr()


class ContentTFIDF(ItemItemModel):
    """An item-item model too: score(u, ·) = Σ_i in_u(i) v_i·V (W = VVᵀ), centred inputs."""

    name = "content"
    user_input = "centred"

    def _fit(self, train: Interactions) -> None:
        meta = train.items
        years = meta["year"] if "year" in meta else [None] * len(meta)
        docs = [item_tokens(g, t, y) for g, t, y in zip(meta["genres"], meta["tags"], years)]
        self.vectors = with_genome(tfidf(docs), meta,                # (items, vocabulary [+ genome tags])
                                   float(self.params.get("genome_weight", 0.0)))
        self.profiles = self.inputs(np.arange(train.matrix.shape[0])) @ self.vectors   # (users, vocabulary)

    def refold(self, train: Interactions) -> ContentTFIDF:
        self.train = train
        self.profiles = self.inputs(np.arange(train.matrix.shape[0])) @ self.vectors
        return self

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return (self.vectors[rows] @ self.vectors.T).toarray()

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.vectors.T).toarray()

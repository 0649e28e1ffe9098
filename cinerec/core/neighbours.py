"""Per-film neighbour lists stored with the films: "watched this, also watched" and "similar".

"Users who liked X also liked" (the co-occurrence idea of the Universal Recommender), scored
for significance with JLH, the heuristic of Elasticsearch's ``significant_terms``:
    n_x users liked X; n_c liked candidate c; co of them liked both; N users in all.
        fg = co / n_x,  bg = n_c / N,  jlh = (fg − bg) · fg / bg   (0 when fg ≤ bg)
Among X's ``candidates`` most co-liked films, each is scored
        score = (1 − w) · jlh / max(jlh) + w · (cos(y_x, y_c) + 1) / 2
with w the weight of item-vector similarity. "Similar": the films of largest inner product
y_x · y_c (the kNN that serving would otherwise run per request).

Two paths compute the co-like counts: ``co_like_lists`` from the whole like matrix (``cinerec
index``), and the streaming job from Elasticsearch for the films a batch touched; both score
with ``score_candidates``, the one owner of the formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

CANDIDATES = 200          # co-liked films considered per film
SIMILARITY_WEIGHT = 0.3   # w above


@dataclass(frozen=True)
class Neighbour:
    movie_id: int
    score: float
    together: int = 0     # users who liked both (0 for vector neighbours)

    def as_dict(self) -> dict:
        return {"movie_id": self.movie_id, "score": round(self.score, 6), "together": self.together}


def score_candidates(n_x: int, total_users: int, candidates: list[tuple[int, int, int]],
                     cosine: dict[int, float], *, size: int,
                     similarity_weight: float = SIMILARITY_WEIGHT) -> list[Neighbour]:
    """``candidates``: (movie_id, co, n_c); ``cosine``: movie_id -> cos(y_x, y_c) (missing: 0)."""
    if not n_x or not total_users:
        return []
    jlh = {}
    for movie, co, n_c in candidates:
        if n_c <= 0 or co <= 0:
            continue
        fg, bg = co / n_x, n_c / total_users
        jlh[movie] = ((fg - bg) * fg / bg if fg > bg else 0.0, co)
    top = max((j for j, _ in jlh.values()), default=0.0) or 1.0
    scored = [Neighbour(m, (1 - similarity_weight) * j / top + similarity_weight * (cosine.get(m, 0.0) + 1) / 2, co)
              for m, (j, co) in jlh.items()]
    return sorted(scored, key=lambda n: (-n.score, n.movie_id))[:size]


def co_like_lists(likes: sp.csr_matrix, movie_ids: np.ndarray, vectors: dict[int, np.ndarray], *,
                  size: int, candidates: int = CANDIDATES) -> dict[int, list[Neighbour]]:
    """``likes``: users × films (0/1), columns in ``movie_ids`` order; ``vectors``: item factors by
    movie id. Returns each liked film's list, computed from C = LᵀL (co-like counts)."""
    likes = sp.csr_matrix((np.ones(likes.nnz, dtype=np.float32), likes.indices, likes.indptr), shape=likes.shape)
    co = (likes.T @ likes).tocsr()                                   # films × films
    liked_by = np.asarray(likes.sum(axis=0)).ravel().astype(int)     # n_c
    total_users = likes.shape[0]
    unit = {m: v / n for m, v in vectors.items() if (n := np.linalg.norm(v)) > 0}
    out: dict[int, list[Neighbour]] = {}
    for i in range(co.shape[0]):
        start, end = co.indptr[i], co.indptr[i + 1]
        cols, counts = co.indices[start:end], co.data[start:end].astype(int)
        keep = cols != i
        cols, counts = cols[keep], counts[keep]
        if not len(cols):
            continue
        if len(cols) > candidates:                     # the most co-liked, ties by lower movie id
            order = np.lexsort((movie_ids[cols], -counts))[:candidates]
            cols, counts = cols[order], counts[order]
        x = int(movie_ids[i])
        chosen = [(int(movie_ids[c]), int(n), int(liked_by[c])) for c, n in zip(cols, counts)]
        out[x] = score_candidates(int(liked_by[i]), total_users, chosen, cosines(unit, x, [m for m, _, _ in chosen]),
                                  size=size)
    return out


def cosines(unit: dict[int, np.ndarray], target: int, movies: list[int]) -> dict[int, float]:
    """cos(y_target, y_m) from unit vectors; films without a vector are left out."""
    if target not in unit:
        return {}
    return {m: float(unit[target] @ unit[m]) for m in movies if m in unit}


def vector_neighbours(movie_ids: np.ndarray, factors: np.ndarray, *, size: int,
                      block: int = 1024) -> dict[int, list[Neighbour]]:
    """Each film's ``size`` films of largest inner product, itself excluded, in blocks of rows
    (Y_block · Yᵀ) so memory stays at block × films."""
    factors = np.asarray(factors, dtype=np.float32)
    n = len(movie_ids)
    size = min(size, n - 1)
    out: dict[int, list[Neighbour]] = {}
    if size <= 0:
        return out
    for start in range(0, n, block):
        scores = factors[start:start + block] @ factors.T                # block × films
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = -np.inf                              # not itself
        top = np.argpartition(-scores, size - 1, axis=1)[:, :size]
        for r, cols in enumerate(top):
            cols = cols[np.argsort(-scores[r, cols], kind="stable")]
            out[int(movie_ids[start + r])] = [Neighbour(int(movie_ids[c]), float(scores[r, c])) for c in cols]
    return out

"""Implicit-feedback ALS fold-in (Hu, Koren & Volinsky, "Collaborative Filtering for Implicit
Feedback Datasets", ICDM 2008), the same solve that trains, onboards and streams.

With item factors Y fixed, user u's vector minimises
    Σ_i c_ui (p_ui − x_uᵀ y_i)² + λ_u ‖x_u‖²
whose solution is
    x_u = (YᵀY + Yᵀ(C_u − I)Y + λ_u I)⁻¹ Yᵀ C_u p(u)
with p_ui = 1 for rated items (0 otherwise) and confidence c_ui = 1 + α r_ui.
Only rated items change YᵀY, so YᵀY is computed once per model version. Like Spark MLlib,
λ_u = λ · n_u (ALS-WR weighting) so that the vectors Spark trains are reproduced exactly.

Forgetting (``half_life_days`` h > 0; 0 = off): a rating counts less the older it is than the
user's own latest rating,
    w_ui = max(2^(−(t_u − t_ui)/h), w_min),   t_u = max_i t_ui,
and the forgotten part of a rating becomes "not rated": item i's term of the loss is the mixture
    w_ui · (1 + α r_ui)(1 − x_uᵀ y_i)²  +  (1 − w_ui) · (0 − x_uᵀ y_i)²,
so a new rating (w = 1) counts as above and a long-forgotten one (w → 0) as an unrated film.
Expanding, the quadratic weight is 1 + α w_ui r_ui and the linear one w_ui (1 + α r_ui):
    x_u = (YᵀY + Yᵀ(C_u − I)Y + λ_u I)⁻¹ Yᵀ g(u),   c_ui = 1 + α w_ui r_ui,   g_ui = w_ui (1 + α r_ui),
the same matrix with r_ui replaced by w_ui r_ui and a right-hand side whose "1" fades too (with
w = 1, g = C_u p(u): the equation above, bit for bit). λ_u = λ Σ_i w_ui: a forgotten rating no
longer counts. Merely lowering the confidence (c = 1 + α w r, p = 1) would leave every old
rating pulling x_u toward it with weight 1: after a taste reversal in the synthetic world that
keeps the click-through at 0.21 against 0.29 for the mixture (docs/operations.md, Forgetting). MLlib's
implicit ALS fixes p = 1, so forgetting trains with the numpy trainer.
t_u is the user's, not the wall clock's: a vector is a function of the user's ratings alone (the
stream re-solves and replays it exactly; a user who stops rating keeps their vector). The floor
w_min = 2⁻²⁰ (a rating 20 half-lives old weighs a millionth of a new one) keeps c − 1 ≥ 2⁻²⁰ α r
far above rounding, so the low-rank path's 1/(c − 1) is at most 2²⁰/(α r) and its guard c > 1
holds as before (c = 1 exactly, e.g. α = 0, takes the Cholesky path).
"""

from __future__ import annotations

import numpy as np

DAY_MS = 86_400_000          # rating times are epoch milliseconds
MIN_WEIGHT = 2.0 ** -20      # w_min: the weight of a rating 20 or more half-lives old


def confidence(ratings: np.ndarray, alpha: float) -> np.ndarray:
    """c_ui = 1 + α r_ui."""
    return 1.0 + alpha * np.asarray(ratings, dtype=np.float64)


def recency_weights(times, half_life_days: float, latest=None) -> np.ndarray:
    """w_ui = max(2^(−(t_u − t_ui)/h), w_min) of ratings at ``times`` (ms); t_u = ``latest``
    (a scalar or one per rating), by default the latest of ``times``."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return np.ones(0)
    latest = times.max() if latest is None else np.asarray(latest, dtype=np.float64)
    halvings = (latest - times) / (half_life_days * DAY_MS)
    return np.maximum(np.exp2(-halvings), MIN_WEIGHT)


class FoldIn:
    """Solves user vectors against fixed item factors. Build one per model version."""

    def __init__(self, item_factors: np.ndarray, regularization: float, alpha: float,
                 half_life_days: float = 0.0):
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        self.regularization = regularization
        self.alpha = alpha
        self.half_life_days = half_life_days                     # 0: no forgetting
        self.gram = self.item_factors.T @ self.item_factors      # YᵀY, once per model version
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(self.gram)   # YᵀY = QΛQᵀ
        self.rotated = self.item_factors @ self.eigenvectors      # YQ: item factors in that basis

    def weights(self, n: int, times=None, latest=None) -> np.ndarray:
        """w_ui of a user's ``n`` ratings at ``times`` (ms): all 1 when forgetting is off."""
        if not self.half_life_days:
            return np.ones(n)
        if times is None:
            raise ValueError("a model with a half-life folds users in from their rating times")
        return recency_weights(times, self.half_life_days, latest)

    def user_vector(self, item_index: np.ndarray, ratings: np.ndarray, times=None, latest=None) -> np.ndarray:
        """x_u for the items a user rated (indices into Y), their ratings and when (ms; needed
        with a half-life); ``latest``: the user's latest rating time if not among ``times``."""
        return self.solve(item_index, ratings, self.weights(len(item_index), times, latest))

    def solve(self, item_index: np.ndarray, ratings: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """x_u for rated items, their ratings and their weights w_ui (the trainers pass theirs)."""
        rank, n = self.gram.shape[0], len(item_index)
        if n == 0:
            return np.zeros(rank)
        ratings = np.asarray(ratings, dtype=np.float64)
        c = confidence(weights * ratings, self.alpha)             # (n_u,) 1 + α w r
        g = weights * confidence(ratings, self.alpha)            # w (1 + α r): Yᵀg is the right-hand side
        lam = self.regularization * weights.sum()
        if n < rank and np.all(c > 1.0):
            return self.eigenvectors @ self._low_rank_update(self.rotated[item_index], c, g, lam)
        y = self.item_factors[item_index]                        # (n_u, d)
        a = self.gram + (y.T * (c - 1.0)) @ y                    # YᵀY + Yᵀ(C_u − I)Y
        a[np.diag_indices(rank)] += lam
        b = y.T @ g                                              # Yᵀ g(u)
        factor = np.linalg.cholesky(a)
        return np.linalg.solve(factor.T, np.linalg.solve(factor, b))

    def _low_rank_update(self, u: np.ndarray, c: np.ndarray, g: np.ndarray, lam: float) -> np.ndarray:
        """(D + Uᵀ(C − I)U)⁻¹ Uᵀg in the eigenbasis, D = Λ + λ_u I diagonal, U = rated rows of YQ:
        D⁻¹b − D⁻¹Uᵀ((C − I)⁻¹ + U D⁻¹ Uᵀ)⁻¹ U D⁻¹b  (Woodbury)."""
        d_inv = 1.0 / (self.eigenvalues + lam)
        scaled = u * d_inv                                       # U D⁻¹
        inner = scaled @ u.T
        inner[np.diag_indices(len(c))] += 1.0 / (c - 1.0)
        first = d_inv * (u.T @ g)                                # D⁻¹b
        return first - scaled.T @ np.linalg.solve(inner, u @ first)


def solve_user(fold: FoldIn, item_index: dict[int, int], ratings) -> np.ndarray:
    """x_u from (movie, rating, ts) triples; films the model does not know are left out of the
    solve, not of t_u (the user's latest rating, whichever film it was of)."""
    ratings = list(ratings)
    known = sorted((item_index[m], r, ts) for m, r, ts in ratings if m in item_index)
    if not known:
        return np.zeros(fold.gram.shape[0])
    items, values, times = zip(*known)
    return fold.user_vector(np.array(items), np.array(values), np.array(times), max(ts for _, _, ts in ratings))

"""Implicit-feedback ALS fold-in (Hu, Koren & Volinsky, "Collaborative Filtering for Implicit
Feedback Datasets", ICDM 2008), the same solve that trains, onboards and streams.

With item factors Y fixed, user u's vector minimises
    Σ_i c_ui (p_ui − x_uᵀ y_i)² + λ_u ‖x_u‖²
whose solution is
    x_u = (YᵀY + Yᵀ(C_u − I)Y + λ_u I)⁻¹ Yᵀ C_u p(u)
with p_ui = 1 for rated items (0 otherwise) and confidence c_ui = 1 + α r_ui.
Only rated items change YᵀY, so YᵀY is computed once per model version. Like Spark MLlib,
λ_u = λ · n_u (ALS-WR weighting) so that the vectors Spark trains are reproduced exactly.

Two exact ways to solve, chosen per user:
- n_u ≥ d: form the d × d matrix and factor it (Cholesky), O(n_u d² + d³);
- n_u < d: YᵀY = QΛQᵀ is diagonalised once per model version, so YᵀY + λ_u I = Q(Λ + λ_u I)Qᵀ
  is inverted for any λ_u by dividing by Λ + λ_u, and the n_u rated items are a rank-n_u update
  of it (Woodbury identity): an n_u × n_u solve, O(n_u² d + n_u³). Most films and new users
  have far fewer ratings than d, so at d = 256 this is ~40× faster than factoring d × d.
"""

from __future__ import annotations

import numpy as np


def confidence(ratings: np.ndarray, alpha: float) -> np.ndarray:
    """c_ui = 1 + α r_ui."""
    return 1.0 + alpha * np.asarray(ratings, dtype=np.float64)


class FoldIn:
    """Solves user vectors against fixed item factors. Build one per model version."""

    def __init__(self, item_factors: np.ndarray, regularization: float, alpha: float):
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        self.regularization = regularization
        self.alpha = alpha
        self.gram = self.item_factors.T @ self.item_factors      # YᵀY, once per model version
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(self.gram)   # YᵀY = QΛQᵀ
        self.rotated = self.item_factors @ self.eigenvectors      # YQ: item factors in that basis

    def user_vector(self, item_index: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """x_u for the items a user rated (indices into Y) and their ratings."""
        rank, n = self.gram.shape[0], len(item_index)
        if n == 0:
            return np.zeros(rank)
        c = confidence(ratings, self.alpha)                      # (n_u,)
        lam = self.regularization * n
        if n < rank and np.all(c > 1.0):
            return self.eigenvectors @ self._low_rank_update(self.rotated[item_index], c, lam)
        y = self.item_factors[item_index]                        # (n_u, d)
        a = self.gram + (y.T * (c - 1.0)) @ y                    # YᵀY + Yᵀ(C_u − I)Y
        a[np.diag_indices(rank)] += lam
        b = y.T @ c                                              # Yᵀ C_u p(u)
        factor = np.linalg.cholesky(a)
        return np.linalg.solve(factor.T, np.linalg.solve(factor, b))

    def _low_rank_update(self, u: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
        """(D + Uᵀ(C − I)U)⁻¹ Uᵀc in the eigenbasis, D = Λ + λ_u I diagonal, U = rated rows of YQ:
        D⁻¹b − D⁻¹Uᵀ((C − I)⁻¹ + U D⁻¹ Uᵀ)⁻¹ U D⁻¹b  (Woodbury)."""
        d_inv = 1.0 / (self.eigenvalues + lam)
        scaled = u * d_inv                                       # U D⁻¹
        inner = scaled @ u.T
        inner[np.diag_indices(len(c))] += 1.0 / (c - 1.0)
        first = d_inv * (u.T @ c)                                # D⁻¹b
        return first - scaled.T @ np.linalg.solve(inner, u @ first)


def solve_user(fold: FoldIn, item_index: dict[int, int], ratings) -> np.ndarray:
    """x_u from (movie, rating) pairs; films the model does not know are left out."""
    known = sorted((item_index[m], r) for m, r in ratings if m in item_index)
    if not known:
        return np.zeros(fold.gram.shape[0])
    items, values = zip(*known)
    return fold.user_vector(np.array(items), np.array(values))

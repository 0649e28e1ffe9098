"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

    B = argmin ‖X − XB‖² + λ‖B‖²  s.t. diag(B) = 0
    P = (XᵀX + λI)⁻¹,   B_ij = −P_ij / P_jj  (i ≠ j),   B_jj = 0
Scores are X_u B. One dense item x item inverse: fine up to a few tens of thousands of items.

Session EASE adds, to the Gram matrix XᵀX, the co-occurrences inside short stretches of each
user's history in time order (sliding windows of ``window`` ratings, every ``stride``):

    G = XᵀX + w · WᵀW,   W = one row per window, 1 for each film rated in it
Films rated in the same sitting are linked more strongly than films a user rated years apart.
WᵀW is a Gram matrix too, so G + λI stays positive definite.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..interactions import Interactions
from ._base import ItemItemModel


class EASE(ItemItemModel):
    name = "ease"

    def _fit(self, train: Interactions) -> None:
        lam = float(self.params.get("regularization", 500.0))
        gram = self.gram(train).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam
        p = _spd_inverse(gram)
        self.weights = -p / np.diag(p)
        np.fill_diagonal(self.weights, 0.0)

    def gram(self, train: Interactions) -> sp.spmatrix:
        x = train.binary
        return x.T @ x

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.fitted.binary[users] @ self.weights

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.weights[rows]


class SessionEASE(EASE):
    name = "ease-session"

    def gram(self, train: Interactions) -> sp.spmatrix:
        windows = session_windows(train.histories(), train.matrix.shape[1],
                                  size=int(self.params.get("window", 10)), stride=int(self.params.get("stride", 1)))
        return super().gram(train) + float(self.params.get("session_weight", 0.3)) * (windows.T @ windows)


def session_windows(histories: list[np.ndarray], n_items: int, *, size: int, stride: int) -> sp.csr_matrix:
    """One row per window of ``size`` consecutive ratings of one user, starting every ``stride``.

    A history shorter than ``size`` is one window; the last ratings of a history not reached by a
    full stride are left to the windows before them.
    """
    if size < 1 or stride < 1:
        raise ValueError(f"window size and stride must be >= 1, got {size} and {stride}")
    rows, cols, n_windows = [], [], 0
    for history in histories:
        if len(history) == 0:
            continue
        width = min(size, len(history))
        starts = np.arange(0, len(history) - width + 1, stride)
        rows.append(np.repeat(np.arange(n_windows, n_windows + len(starts)), width))
        cols.append(history[starts[:, None] + np.arange(width)].ravel())
        n_windows += len(starts)
    rows_flat = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    cols_flat = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols_flat)), (rows_flat, cols_flat)), shape=(n_windows, n_items))


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix via Cholesky (about 3x faster than LU)."""
    factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Gram matrix is not positive definite (dpotrf info {info})")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (dpotri info {info})")
    upper = np.triu(inverse)
    return upper + np.triu(inverse, 1).T

"""Fold-in: both fast paths (Cholesky, low-rank update) against the equation as written, and its properties."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.foldin import FoldIn, confidence


def factors(seed: int, items: int = 30, rank: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, (items, rank))


@given(seed=st.integers(0, 10_000), n=st.integers(1, 29), alpha=st.just(0.0) | st.floats(0.1, 40),
       reg=st.floats(0.001, 2.0))
@settings(max_examples=80, deadline=None)
def test_fast_paths_match_the_reference(seed, n, alpha, reg):
    # rank 12: fewer ratings than that take the low-rank update, more the Cholesky path;
    # alpha 0 (all confidences 1) always takes the Cholesky path
    y = factors(seed, rank=12)
    rng = np.random.default_rng(seed + 1)
    items = rng.choice(len(y), n, replace=False)
    ratings = rng.choice(np.arange(1, 11) / 2, n)
    fast = FoldIn(y, reg, alpha).user_vector(items, ratings)
    slow = user_vector_reference(y, items, ratings, reg, alpha)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-10)


def user_vector_reference(item_factors: np.ndarray, item_index: np.ndarray, ratings: np.ndarray,
                          regularization: float, alpha: float) -> np.ndarray:
    """The equation as written, with dense C_u and p(u): slow, obvious, for tests."""
    y = np.asarray(item_factors, dtype=np.float64)
    n_items, rank = y.shape
    c_u = np.ones(n_items)
    p_u = np.zeros(n_items)
    c_u[item_index] = confidence(ratings, alpha)
    p_u[item_index] = 1.0
    c = np.diag(c_u)
    lam = regularization * len(item_index)
    return np.linalg.inv(y.T @ y + y.T @ (c - np.eye(n_items)) @ y + lam * np.eye(rank)) @ y.T @ c @ p_u


def test_low_rank_update_and_cholesky_agree_on_the_same_user():
    y = factors(3, items=200, rank=40)
    fold = FoldIn(y, 0.2, 1.5)
    rng = np.random.default_rng(3)
    items, ratings = rng.choice(200, 10, replace=False), rng.choice(np.arange(1, 11) / 2, 10)
    c = 1 + 1.5 * ratings
    a = fold.gram + (y[items].T * (c - 1)) @ y[items] + 0.2 * 10 * np.eye(40)
    np.testing.assert_allclose(fold.user_vector(items, ratings), np.linalg.solve(a, y[items].T @ c), rtol=1e-8)


@given(seed=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_the_system_matrix_is_symmetric_positive_definite(seed):
    y = factors(seed)
    fold = FoldIn(y, 0.1, 5.0)
    rng = np.random.default_rng(seed)
    items = rng.choice(len(y), 8, replace=False)
    c = 1 + 5.0 * rng.choice(np.arange(1, 11) / 2, 8)
    a = fold.gram + (y[items].T * (c - 1)) @ y[items] + 0.1 * 8 * np.eye(y.shape[1])
    np.testing.assert_allclose(a, a.T)
    assert np.all(np.linalg.eigvalsh(a) > 0)


@given(seed=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_result_is_independent_of_event_order(seed):
    y = factors(seed)
    rng = np.random.default_rng(seed)
    items = rng.choice(len(y), 10, replace=False)
    ratings = rng.choice(np.arange(1, 11) / 2, 10)
    order = rng.permutation(10)
    fold = FoldIn(y, 0.1, 2.0)
    np.testing.assert_allclose(fold.user_vector(items, ratings),
                               fold.user_vector(items[order], ratings[order]), atol=1e-12)


def test_checkerboard_users_point_at_their_own_block():
    # Two blocks of items with orthogonal factors: a user who rated block A only gets a
    # vector that scores every A item above every B item.
    y = np.zeros((10, 2))
    y[:5, 0] = 1.0
    y[5:, 1] = 1.0
    x = FoldIn(y, 0.01, 1.0).user_vector(np.array([0, 1, 2]), np.array([5.0, 4.0, 5.0]))
    scores = y @ x
    assert scores[:5].min() > scores[5:].max()


def test_no_ratings_gives_the_zero_vector():
    assert not FoldIn(factors(1), 0.1, 1.0).user_vector(np.array([], int), np.array([])).any()

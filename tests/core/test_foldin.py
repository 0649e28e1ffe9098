"""Fold-in: both fast paths (Cholesky, low-rank update) against the equation as written, and its properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.core.foldin import DAY_MS, MIN_WEIGHT, FoldIn, solve_user


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
                          regularization: float, alpha: float, weights: np.ndarray | None = None) -> np.ndarray:
    """The minimiser as written, with dense matrices: slow, obvious, for tests. ``weights``:
    forgetting's w_ui. Each film's loss is the mixture w·(1 + αr)(1 − xᵀy)² + (1 − w)(0 − xᵀy)²
    (unrated: w = 0), i.e. the weighted least squares Σ_i Σ_k a_ik (target_k − xᵀy_i)² with two
    terms per film, solved by its normal equations; λ_u = λ Σ w."""
    y = np.asarray(item_factors, dtype=np.float64)
    n_items, rank = y.shape
    w_u = np.zeros(n_items)
    r_u = np.zeros(n_items)
    w_u[item_index] = np.ones(len(item_index)) if weights is None else weights
    r_u[item_index] = ratings
    seen, unseen = w_u * (1.0 + alpha * r_u), 1.0 - w_u          # weights of the targets 1 and 0
    lam = regularization * w_u.sum()
    a = y.T @ np.diag(seen + unseen) @ y + lam * np.eye(rank)
    return np.linalg.solve(a, y.T @ (seen * 1.0 + unseen * 0.0))


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


# -- forgetting: a recency weight on ratings ---------------------------------------------------

def weights_reference(times: np.ndarray, half_life_days: float) -> np.ndarray:
    """w_ui = max(2^(−(t_u − t_ui)/h), 2⁻²⁰) with t_u the latest rating, as written."""
    age_days = (times.max() - times) / 86_400_000
    return np.maximum(0.5 ** (age_days / half_life_days), 2.0 ** -20)


@given(seed=st.integers(0, 10_000), n=st.integers(1, 29), alpha=st.floats(0.1, 40), reg=st.floats(0.001, 2.0),
       half_life=st.floats(0.01, 1000), spread=st.floats(0, 40))
@settings(max_examples=80, deadline=None)
def test_fast_paths_match_the_reference_with_forgetting(seed, n, alpha, reg, half_life, spread):
    # ratings up to ``spread`` half-lives old: past 20, the floor w_min (tiny c − 1 on the low-rank path)
    y = factors(seed, rank=12)
    rng = np.random.default_rng(seed + 1)
    items = rng.choice(len(y), n, replace=False)
    ratings = rng.choice(np.arange(1, 11) / 2, n)
    times = np.round(10**12 + rng.uniform(0, spread * half_life * DAY_MS, n))
    fast = FoldIn(y, reg, alpha, half_life).user_vector(items, ratings, times)
    slow = user_vector_reference(y, items, ratings, reg, alpha, weights_reference(times, half_life))
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-10)


def test_forgetting_known_answer():
    # Two films, Y = I, α = 1, λ = 0.5, half-life one day. Both rated 4; film 0 one day before
    # film 1, so w = (1/2, 1), λ_u = λ Σw = 0.75, c = 1 + α w r = (3, 5), g = w (1 + α r) = (5/2, 5).
    #   A = YᵀY + Yᵀ(C − I)Y + λ_u I = I + diag(2, 4) + 0.75 I = diag(3.75, 5.75),  b = Yᵀg = (2.5, 5)
    #   x = (2.5 / 3.75, 5 / 5.75) = (2/3, 20/23)
    # Without forgetting λ_u = 1, c = g = (5, 5): A = diag(6, 6), x = (5/6, 5/6).
    items, ratings, times = np.array([0, 1]), np.array([4.0, 4.0]), np.array([0, DAY_MS])
    for y in (np.eye(2), np.eye(3)):          # rank 2: Cholesky; rank 3 (n_u < d): the low-rank update
        expected = np.array([2 / 3, 20 / 23, 0.0])[:len(y)]
        np.testing.assert_allclose(FoldIn(y, 0.5, 1.0, 1.0).user_vector(items, ratings, times), expected, rtol=1e-12)
        np.testing.assert_allclose(FoldIn(y, 0.5, 1.0).user_vector(items, ratings, times),
                                   np.array([5 / 6, 5 / 6, 0.0])[:len(y)], rtol=1e-12)


@given(seed=st.integers(0, 10_000), n=st.integers(1, 29), alpha=st.just(0.0) | st.floats(0.1, 40))
@settings(max_examples=40, deadline=None)
def test_half_life_zero_is_exactly_no_forgetting(seed, n, alpha):
    y = factors(seed, rank=12)
    rng = np.random.default_rng(seed + 1)
    items, ratings = rng.choice(len(y), n, replace=False), rng.choice(np.arange(1, 11) / 2, n)
    times = rng.integers(0, 10**12, n)
    without = FoldIn(y, 0.3, alpha).user_vector(items, ratings)
    assert np.array_equal(FoldIn(y, 0.3, alpha, 0.0).user_vector(items, ratings, times), without)
    assert np.array_equal(FoldIn(y, 0.3, alpha, 0).user_vector(items, ratings), without)


@given(rating=st.sampled_from([x / 2 for x in range(1, 11)]), half_life=st.floats(0.01, 1000),
       gap=st.floats(0.01, 100), per_block=st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_with_a_half_life_the_newer_ratings_dominate(rating, half_life, gap, per_block):
    # Two orthogonal blocks of films; the user gave the same rating to films of block A, then
    # ``gap`` half-lives later to as many of block B. B's films score above A's; without
    # forgetting they tie.
    y = np.zeros((10, 2))
    y[:5, 0] = 1.0
    y[5:, 1] = 1.0
    items = np.r_[np.arange(per_block), 5 + np.arange(per_block)]
    ratings = np.full(2 * per_block, rating)
    times = np.r_[np.zeros(per_block), np.full(per_block, gap * half_life * DAY_MS)]
    scores = y @ FoldIn(y, 0.05, 2.0, half_life).user_vector(items, ratings, times)
    assert scores[5:].min() > scores[:5].max()
    scores = y @ FoldIn(y, 0.05, 2.0).user_vector(items, ratings, times)
    assert scores[0] == scores[5]


def test_weights_floor_at_twenty_half_lives_and_need_times():
    fold = FoldIn(factors(1), 0.1, 1.0, 10.0)
    days = np.array([0.0, 100, 200, 300])                 # 30, 20, 10 and 0 half-lives before the latest
    assert MIN_WEIGHT == 2.0 ** -20
    np.testing.assert_array_equal(fold.weights(4, days * DAY_MS), np.array([2.0 ** -20, 2.0 ** -20, 2.0 ** -10, 1.0]))
    with pytest.raises(ValueError, match="rating times"):
        fold.user_vector(np.array([0]), np.array([4.0]))


def test_solve_user_counts_age_from_the_latest_rating_of_any_film():
    # Film 99 is unknown to the model, but rating it is when the user was last seen.
    y = factors(2)
    fold, index = FoldIn(y, 0.1, 1.0, 1.0), {10: 0, 11: 1}
    vector = solve_user(fold, index, [(10, 4.0, 0), (11, 3.0, DAY_MS), (99, 5.0, 3 * DAY_MS)])
    expected = user_vector_reference(y, np.array([0, 1]), np.array([4.0, 3.0]), 0.1, 1.0, np.array([1 / 8, 1 / 4]))
    np.testing.assert_allclose(vector, expected, rtol=1e-9)


def test_a_forgotten_rating_is_as_if_the_film_were_not_rated():
    # 40 half-lives old: at the floor w = 2⁻²⁰, it neither pulls the vector nor counts in λ_u.
    y = factors(4, rank=12)
    items, ratings = np.array([1, 2, 3, 7]), np.array([5.0, 4.0, 3.5, 1.0])
    times = np.array([0, 40 * DAY_MS, 40 * DAY_MS, 40 * DAY_MS])
    fold = FoldIn(y, 0.2, 2.0, 1.0)
    without = fold.user_vector(items[1:], ratings[1:], times[1:])
    np.testing.assert_allclose(fold.user_vector(items, ratings, times), without, rtol=1e-4, atol=1e-6)
    assert not np.allclose(FoldIn(y, 0.2, 2.0).user_vector(items, ratings), FoldIn(y, 0.2, 2.0).user_vector(
        items[1:], ratings[1:]), atol=1e-3)                         # without forgetting it weighs fully

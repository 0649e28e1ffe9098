"""The per-film lists: JLH significance, the checkerboard answer, the fast vector path vs. the obvious one."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.core.neighbours import co_like_lists, score_candidates, vector_neighbours


def vector_neighbours_reference(movie_ids: np.ndarray, factors: np.ndarray, *, size: int) -> dict[int, list[int]]:
    """The slow, obvious version of ``vector_neighbours``, for tests: sort every film's scores."""
    out = {}
    for i, x in enumerate(movie_ids):
        scores = [(float(factors[i] @ factors[j]), int(m)) for j, m in enumerate(movie_ids) if j != i]
        out[int(x)] = [m for _, m in sorted(scores, key=lambda s: -s[0])[:size]]
    return out


def test_jlh_known_answer_and_vector_blend():
    # n_x = 10 of N = 100 liked X; 5 of them liked c, which 10 liked in all:
    # fg = 0.5, bg = 0.1, jlh = 0.4 · 0.5 / 0.1 = 2.0; d liked by 50: fg 0.5 = bg 0.5 -> jlh 0.
    scored = score_candidates(10, 100, [(7, 5, 10), (8, 5, 50)], {7: 1.0, 8: -1.0}, size=5, similarity_weight=0.3)
    assert [n.movie_id for n in scored] == [7, 8]
    assert scored[0].score == pytest.approx(0.7 * 1.0 + 0.3 * 1.0)
    assert scored[1].score == pytest.approx(0.0) and scored[1].together == 5


def test_checkerboard_lists_stay_inside_their_block():
    # users 0-9 like films 0-4, users 10-19 like films 5-9; user 20 likes one of each block.
    rows, cols = [], []
    for user in range(20):
        for film in (range(5) if user < 10 else range(5, 10)):
            rows.append(user)
            cols.append(film)
    rows += [20, 20]
    cols += [0, 9]
    likes = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(21, 10))
    ids = np.arange(100, 110)
    lists = co_like_lists(likes, ids, {}, size=4)
    for film in range(10):
        block = set(range(100, 105)) if film < 5 else set(range(105, 110))
        assert {n.movie_id for n in lists[100 + film]} == block - {100 + film}   # the odd user's cross-like loses
    assert all(n.together >= 10 for n in lists[101])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), rank=st.integers(1, 6), size=st.integers(1, 8), block=st.integers(1, 16),
       seed=st.integers(0, 10_000))
def test_vector_neighbours_equal_the_obvious_sort(n, rank, size, block, seed):
    factors = np.random.default_rng(seed).normal(size=(n, rank)).astype(np.float32)
    ids = np.arange(1000, 1000 + n)
    fast = vector_neighbours(ids, factors, size=size, block=block)
    slow = vector_neighbours_reference(ids, factors.astype(np.float64), size=min(size, n - 1))
    for movie in ids:
        got = [x.movie_id for x in fast[int(movie)]]
        assert len(got) == len(slow[int(movie)]) and int(movie) not in got
        scores = {int(m): float(factors[i] @ factors[int(movie) - 1000]) for i, m in enumerate(ids)}
        # equal up to ties in float32 scores
        assert [round(scores[m], 4) for m in got] == [round(scores[m], 4) for m in slow[int(movie)]]

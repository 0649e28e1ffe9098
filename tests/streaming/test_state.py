"""The rules of the streaming state: a re-rating replaces, arrival order does not matter, the vector
is the exact fold-in of the current ratings, and the latest rating is the one every other path
(pandas frames here, Spark: tests/batch/test_preprocess.py) keeps, ties included."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from cinerec.core.dataset import latest_ratings
from cinerec.core.foldin import FoldIn
from cinerec.streaming.state import user_state_document, user_vector
from cinerec.streaming.stateful import EntityState


def state_of(ratings) -> EntityState:
    """A user's state after (movie, rating, ts) ratings, each its own event."""
    state = EntityState()
    for i, (movie, value, ts) in enumerate(ratings):
        state.apply(movie, value, ts, f"{i:04d}")
    return state


def test_a_re_rating_replaces_the_old_value_and_counts_once():
    state = EntityState()
    assert state.apply(7, 3.0, 100, "a") is None                      # a first rating
    assert state.apply(7, 5.0, 200, "b") == (3.0, 100, "a")           # a re-rating: the value it replaced
    assert state.apply(7, 1.0, 150, "c") is False                     # older than what we have
    assert state.ratings[7][0] == 5.0 and state.totals == (1, 5.0, 1)
    document = user_state_document(1, state.rows)
    assert document["rating_count"] == 1 and document["liked"] == ["7"] and document["last_ts"] == 200


def test_on_equal_times_the_higher_rating_wins_whatever_the_order():
    for first, second in ((2.0, 4.5), (4.5, 2.0)):
        state = EntityState()
        state.apply(7, first, 100, "a")
        state.apply(7, second, 100, "b")
        assert state.ratings[7][0] == 4.5 and state.totals == (1, 4.5, 1)


def test_replaying_the_same_event_changes_nothing():
    state = EntityState()
    assert state.apply(3, 4.0, 10, "a") is None
    assert state.apply(3, 4.0, 10, "a") is False


# (movie, rating, ts): few films and times, so re-ratings and equal times are frequent
events = st.lists(st.tuples(st.integers(1, 6), st.sampled_from([x / 2 for x in range(1, 11)]),
                            st.integers(0, 8)), max_size=25)


@given(events, st.randoms())
def test_final_state_and_film_totals_do_not_depend_on_arrival_order(raw, rnd):
    stream = [(m, r, ts, f"{i:04d}") for i, (m, r, ts) in enumerate(raw)]
    shuffled = stream[:]
    rnd.shuffle(shuffled)
    a, b = EntityState(), EntityState()
    for event in stream:
        a.apply(*event)
    for event in shuffled:
        b.apply(*event)
    values = lambda s: {m: (r, ts) for m, (r, ts, _) in s.ratings.items()}   # noqa: E731
    assert values(a) == values(b)
    assert a.totals[0] == b.totals[0] == len({m for m, _, _ in raw}) and a.totals[2] == b.totals[2]
    assert np.isclose(a.totals[1], b.totals[1]) and np.isclose(a.totals[1], sum(r for r, _ in values(a).values()))


@given(events, st.randoms())
def test_frames_keep_the_same_latest_rating_as_the_state(raw, rnd):
    """``core.dataset.latest_ratings`` (the indexer's and the pipeline's rule on frames) keeps what
    the streaming state keeps, ties of event time included, whatever the rows' order."""
    rows = raw[:]
    rnd.shuffle(rows)
    frame = latest_ratings(pd.DataFrame([{"user_id": 1, "movie_id": m, "rating": r, "ts": ts} for m, r, ts in rows],
                                        columns=["user_id", "movie_id", "rating", "ts"]))
    assert {int(m): (float(r), int(ts)) for m, r, ts in zip(frame["movie_id"], frame["rating"], frame["ts"])} == \
        {m: (r, ts) for m, (r, ts, _) in state_of(raw).ratings.items()}


def test_vector_is_the_exact_fold_in_of_the_current_ratings():
    y = np.random.default_rng(0).normal(size=(5, 3))
    fold = FoldIn(y, 0.1, 1.0)
    state = state_of([(10, 2.0, 1), (11, 4.0, 2), (10, 5.0, 3), (99, 3.0, 4)])
    index = {10: 0, 11: 1, 12: 2}
    expected = fold.user_vector(np.array([0, 1]), np.array([5.0, 4.0]))   # 99 is not in the model
    np.testing.assert_allclose(user_vector(fold, index, state.rows), expected)


def test_vector_with_a_half_life_is_the_batch_fold_in_of_the_same_ratings_and_times():
    # Ages count from the user's latest rating (of film 99, which the model does not know), in
    # whatever order the events arrive.
    day = 86_400_000
    y = np.random.default_rng(1).normal(size=(5, 3))
    fold = FoldIn(y, 0.1, 1.0, half_life_days=2.0)
    events = [(10, 2.0, 0), (11, 4.0, day), (10, 5.0, 3 * day), (99, 3.0, 5 * day)]
    index = {10: 0, 11: 1, 12: 2}
    expected = fold.user_vector(np.array([0, 1]), np.array([5.0, 4.0]), np.array([3 * day, day]), latest=5 * day)
    for order in (events, events[::-1]):
        np.testing.assert_array_equal(user_vector(fold, index, state_of(order).rows), expected)
    assert not np.allclose(expected, FoldIn(y, 0.1, 1.0).user_vector(np.array([0, 1]), np.array([5.0, 4.0])))


def test_key_state_round_trips_and_counts_trending_inside_the_watermark():
    from cinerec.streaming.state import TRENDING_BUCKET_MS

    now, window, lateness = 10**12, 3_600_000, 600_000
    state = EntityState()
    assert state.apply(1, 4.0, now, "a") is None                    # a first rating
    assert state.apply(1, 4.0, now, "a") is False                   # the same event again
    assert state.apply(2, 3.0, now - 5, "b") is None
    assert state.apply(2, 5.0, now - 1, "c") == (3.0, now - 5, "b")  # a re-rating replaces
    state.count_trending(now, now, lateness)
    state.count_trending(now - lateness - 1, now, lateness)          # behind the watermark
    assert sum(state.drop_old_buckets(now, window).values()) == 1
    copy = EntityState(state.value())
    assert copy.ratings == state.ratings and copy.totals == (2, 9.0, 2)
    assert sum(copy.drop_old_buckets(now + window + TRENDING_BUCKET_MS, window).values()) == 0

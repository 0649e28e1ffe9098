import uuid

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from cinerec.core.dataset import latest_ratings
from cinerec.core.events import RatingEvent
from cinerec.core.foldin import FoldIn
from cinerec.streaming.state import FilmDelta, UserState


def rating(movie, value, ts, event_id=None):
    return RatingEvent(event_id or str(uuid.uuid4()), 1, movie, value, ts, "api")


def test_a_re_rating_replaces_the_old_value_and_counts_once():
    state = UserState(1)
    assert state.apply(rating(7, 3.0, 100)) == FilmDelta(7, 1, 3.0)
    assert state.apply(rating(7, 5.0, 200)) == FilmDelta(7, 0, 2.0)
    assert state.apply(rating(7, 1.0, 150)) is None          # older than what we have
    assert state.ratings[7][0] == 5.0
    assert state.document()["rating_count"] == 1 and state.document()["liked"] == ["7"]


def test_replaying_the_same_event_changes_nothing():
    state, event = UserState(1), rating(3, 4.0, 10)
    assert state.apply(event) is not None
    assert state.apply(event) is None


events = st.lists(st.tuples(st.integers(1, 6), st.sampled_from([x / 2 for x in range(1, 11)]),
                            st.integers(0, 50)), max_size=25)


@given(events, st.randoms())
def test_final_state_and_summed_deltas_do_not_depend_on_arrival_order(raw, rnd):
    stream = [rating(m, r, ts, f"{i:04d}") for i, (m, r, ts) in enumerate(raw)]
    shuffled = stream[:]
    rnd.shuffle(shuffled)
    a, b = UserState(1), UserState(1)
    deltas_a = [d for d in map(a.apply, stream) if d]
    deltas_b = [d for d in map(b.apply, shuffled) if d]
    assert a.ratings == b.ratings
    for movie in {m for m, _, _ in raw}:
        count_a = sum(d.count for d in deltas_a if d.movie_id == movie)
        total_a = sum(d.total for d in deltas_a if d.movie_id == movie)
        assert count_a == sum(d.count for d in deltas_b if d.movie_id == movie) == 1
        assert np.isclose(total_a, sum(d.total for d in deltas_b if d.movie_id == movie))
        assert np.isclose(total_a, a.ratings[movie][0])


def test_vector_is_the_exact_fold_in_of_the_current_ratings():
    y = np.random.default_rng(0).normal(size=(5, 3))
    fold = FoldIn(y, 0.1, 1.0)
    state = UserState(1)
    for movie, value, ts in [(10, 2.0, 1), (11, 4.0, 2), (10, 5.0, 3), (99, 3.0, 4)]:
        state.apply(rating(movie, value, ts))
    index = {10: 0, 11: 1, 12: 2}
    expected = fold.user_vector(np.array([0, 1]), np.array([5.0, 4.0]))   # 99 is not in the model
    np.testing.assert_allclose(state.vector(fold, index), expected)


def test_vector_with_a_half_life_is_the_batch_fold_in_of_the_same_ratings_and_times():
    # Ages count from the user's latest rating (of film 99, which the model does not know), in
    # whatever order the events arrive.
    day = 86_400_000
    y = np.random.default_rng(1).normal(size=(5, 3))
    fold = FoldIn(y, 0.1, 1.0, half_life_days=2.0)
    events = [rating(10, 2.0, 0), rating(11, 4.0, day), rating(10, 5.0, 3 * day), rating(99, 3.0, 5 * day)]
    index = {10: 0, 11: 1, 12: 2}
    expected = fold.user_vector(np.array([0, 1]), np.array([5.0, 4.0]), np.array([3 * day, day]), latest=5 * day)
    for order in (events, events[::-1]):
        state = UserState(1)
        for event in order:
            state.apply(event)
        np.testing.assert_array_equal(state.vector(fold, index), expected)
    assert not np.allclose(expected, FoldIn(y, 0.1, 1.0).user_vector(np.array([0, 1]), np.array([5.0, 4.0])))


def test_key_state_round_trips_and_counts_trending_inside_the_watermark():
    from cinerec.streaming.stateful import TRENDING_BUCKET_MS, EntityState

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


@given(events, st.randoms())
def test_frames_keep_the_same_latest_rating_as_the_state(raw, rnd):
    """``core.dataset.latest_ratings`` (the indexer's and the pipeline's rule on frames) keeps what
    the streaming state keeps: the later event time, on equal times the event that came later."""
    stream = [rating(m, r, ts, f"{i:04d}") for i, (m, r, ts) in enumerate(raw)]
    rnd.shuffle(stream)
    state = UserState(1)
    for event in stream:
        state.apply(event)
    in_order = sorted(stream, key=lambda e: (e.ts, e.event_id))       # equal times: the later id last
    frame = latest_ratings(pd.DataFrame([e.as_dict() for e in in_order]) if stream else
                           pd.DataFrame(columns=["user_id", "movie_id", "rating", "ts"]))
    assert {int(m): float(r) for m, r in zip(frame["movie_id"], frame["rating"])} == \
        {m: r for m, (r, _, _) in state.ratings.items()}

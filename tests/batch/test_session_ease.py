"""Session EASE: windows over each user's history in time order, and what they add to EASE."""

import numpy as np
import pandas as pd
import pytest

from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.batch.recommenders.ease import session_windows


def test_windows_slide_over_each_history_in_time_order():
    ratings = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2], "movie_id": [10, 11, 12, 13, 10, 12],
                            "rating": 4.0, "ts": [4000, 1000, 3000, 2000, 5000, 5000]})
    inter = Interactions.build(ratings, np.array([1, 2]), np.array([10, 11, 12, 13]))
    histories = inter.histories()
    assert [list(h) for h in histories] == [[1, 3, 2, 0], [0, 2]]   # by time, ties by column
    windows = session_windows(histories, 4, size=3, stride=1).toarray()
    np.testing.assert_array_equal(windows, [[0, 1, 1, 1],     # user 1: films 11, 13, 12
                                            [1, 0, 1, 1],     #         films 13, 12, 10
                                            [1, 0, 1, 0]])    # user 2: shorter than a window
    assert session_windows(histories, 4, size=2, stride=2).shape == (3, 4)


def sittings(seed: int = 0) -> pd.DataFrame:
    """40 users rate all 20 films; films 2k and 2k+1 are always rated in the same sitting.

    Every film co-occurs with every other, so only the time order says which films go together.
    User 99 rated every film but 1 (its partner 0 is rated) and the pair 2, 3.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, 41):
        for slot, pair in enumerate(rng.permutation(10)):
            for offset, film in enumerate(rng.permutation([2 * pair, 2 * pair + 1])):
                rows.append((user, int(film), 4.0, slot * 86_400_000 + offset * 1000))
    for slot, film in enumerate(f for f in rng.permutation(20) if f not in (1, 2, 3)):
        rows.append((99, int(film), 4.0, slot * 86_400_000))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"])


def test_session_ease_links_films_rated_in_the_same_sitting():
    ratings = sittings()
    inter = Interactions.build(ratings, np.sort(ratings["user_id"].unique()), np.arange(20))
    user = inter.user_index([99])
    session = create("ease-session", {"regularization": 5.0, "window": 2}).fit(inter).score(user)[0]
    assert session[1] > max(session[2], session[3])
    plain = create("ease", {"regularization": 5.0}).fit(inter).score(user)[0]
    assert abs(plain[1] - plain[2]) < 0.01 and abs(plain[1] - plain[3]) < 0.01   # no signal without time


def test_session_ease_needs_rating_times():
    ratings = sittings().drop(columns="ts")
    inter = Interactions.build(ratings, np.sort(ratings["user_id"].unique()), np.arange(20))
    with pytest.raises(ValueError, match="rating times"):
        create("ease-session").fit(inter)

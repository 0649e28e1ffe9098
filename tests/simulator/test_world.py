import numpy as np
import pandas as pd
import pytest

from cinerec.batch.movielens import load
from cinerec.core.events import is_valid_rating
from cinerec.simulator.world import EPOCH_MS, HISTORY_SPAN_MS, Tastes, generate

PARAMS = dict(users=300, movies=500, mean_ratings_per_user=40, min_ratings_per_user=20, latent_dim=8)


@pytest.fixture(scope="module")
def world():
    return generate(seed=7, **PARAMS)


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = generate(seed=1, **PARAMS), generate(seed=1, **PARAMS), generate(seed=2, **PARAMS)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    pd.testing.assert_frame_equal(a.movies, b.movies)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert not a.ratings.equals(c.ratings)
    assert list(a.movies["title"]) != list(c.movies["title"])


def test_popularity_has_a_long_tail(world):
    counts = world.ratings["movie_id"].value_counts().reindex(world.movies["movie_id"], fill_value=0)
    top_tenth = counts.sort_values(ascending=False).head(len(counts) // 10).sum()
    assert top_tenth / counts.sum() > 0.35       # a uniform catalog would give 0.10
    assert counts.median() < counts.mean()       # right-skewed


def test_ratings_are_on_the_half_star_scale_with_a_realistic_shape(world):
    ratings = world.ratings["rating"]
    assert ratings.map(is_valid_rating).all()
    assert 3.2 < ratings.mean() < 3.9              # MovieLens: 3.5
    assert ratings.value_counts().idxmax() in (3.0, 4.0)
    assert (ratings % 1 == 0.5).any() and (ratings % 1 == 0).any()


def test_every_user_meets_the_minimum_and_pairs_are_unique(world):
    per_user = world.ratings.groupby("user_id").size()
    assert per_user.min() >= PARAMS["min_ratings_per_user"]
    assert 30 < per_user.mean() < 60
    assert not world.ratings.duplicated(["user_id", "movie_id"]).any()


def test_genres_follow_movielens_frequencies(world):
    genres = world.movies["genres"].explode().value_counts(normalize=False) / len(world.movies)
    assert genres.index[0] in ("Drama", "Comedy")
    assert genres["Drama"] > genres.get("Western", 0) * 5


def test_ratings_follow_the_hidden_tastes(world):
    # The planted model must be learnable: observed ratings correlate with x_u . y_i + b.
    t = world.tastes
    u = np.searchsorted(t.user_id, world.ratings["user_id"])
    m = np.searchsorted(t.movie_id, world.ratings["movie_id"])
    predicted = np.einsum("nd,nd->n", t.user_factors[u], t.item_factors[m]) + t.user_bias[u] + t.item_bias[m]
    assert np.corrcoef(predicted, world.ratings["rating"])[0, 1] > 0.6


def test_saved_world_reads_back_as_movielens_with_people_kept_apart(tmp_path, world):
    world.save(tmp_path)
    data = load(tmp_path)
    assert data.layout == "ml-csv"
    assert len(data.ratings) == len(world.ratings)
    assert data.movies["title"].tolist() == world.movies["title"].tolist()
    assert "email" not in pd.read_csv(tmp_path / "ratings.csv").columns
    users = pd.read_csv(tmp_path / "users.csv")
    assert {"name", "email", "country", "age"} <= set(users.columns)
    assert users["email"].is_unique
    tastes = Tastes.load(tmp_path / "tastes.npz")
    np.testing.assert_array_equal(tastes.user_factors, world.tastes.user_factors)


def test_a_history_dated_on_another_clock_is_the_same_history_rescaled():
    args = {"seed": 5, "users": 40, "movies": 80, "mean_ratings_per_user": 12, "min_ratings_per_user": 5,
            "latent_dim": 4}
    default = generate(**args)
    assert default.ratings["ts"].min() >= EPOCH_MS and default.ratings["ts"].max() < EPOCH_MS + HISTORY_SPAN_MS
    end = 1_800_000_000_000
    dated = generate(**args, history_end_ms=end, history_span_ms=300_000)      # the loop demo's 5 minutes
    both = default.ratings.merge(dated.ratings, on=["user_id", "movie_id"], suffixes=("", "_dated"))
    assert len(both) == len(default.ratings) == len(dated.ratings) and (both["rating"] == both["rating_dated"]).all()
    assert both["ts_dated"].between(end - 300_000, end).all()
    in_time = both.sort_values("ts", kind="stable")["ts_dated"]
    assert in_time.is_monotonic_increasing                        # the same order (ties: the same second)

"""Spark cleaning and features on a fixture with one of each defect."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cinerec.batch.movielens import load
from cinerec.batch.preprocess import preprocess, read_clean

from movielens_fixtures import GENOME_TAGS, RATINGS, genome_rows, write

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def cleaned(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("pp")
    report = preprocess(load(write("ml-csv", root / "ml", defects=True, genome=True)), root / "features",
                        spark=spark)
    return report, read_clean(report)


def test_each_defect_is_dropped_and_counted(cleaned):
    report, frames = cleaned
    assert report["dropped"] == {"missing_values": 1, "out_of_range": 1, "unknown_movie": 1,
                                 "duplicates": 1}
    assert report["rows"]["clean"] == len(RATINGS) == len(frames["ratings"])


def test_duplicate_pair_keeps_the_latest_rating(cleaned):
    _, frames = cleaned
    pair = frames["ratings"].query("user_id == 1 and movie_id == 1")
    assert len(pair) == 1 and pair["ts"].iloc[0] == 964990000 * 1000


def test_movie_features_include_a_bayesian_average(cleaned):
    report, frames = cleaned
    movies = frames["movies"].set_index("movie_id")
    ratings = frames["ratings"]
    m, c = report["global_mean"], report["bayesian_prior_count"]
    toy = ratings[ratings["movie_id"] == 1]["rating"]
    assert movies.loc[1, "rating_count"] == len(toy)
    assert movies.loc[1, "bayesian_avg"] == pytest.approx((c * m + toy.sum()) / (c + len(toy)))
    assert movies.loc[1, "title"] == "Toy Story" and list(movies.loc[1, "genres"])[0] == "Adventure"


def test_user_features(cleaned):
    _, frames = cleaned
    users = frames["users"].set_index("user_id")
    assert users.loc[1, "rating_count"] == 3
    assert users.loc[2, "days_since_last"] == 0  # user 2 rated last in the data


def test_a_second_run_on_the_same_input_reuses_the_output(cleaned, spark, tmp_path):
    report, _ = cleaned
    written = Path(report["path"]) / "report.json"
    before = written.stat().st_mtime_ns
    again = preprocess(load(write("ml-csv", tmp_path / "copy", defects=True, genome=True)),
                       Path(report["path"]).parent, spark=spark)
    assert again == report
    assert written.stat().st_mtime_ns == before


def test_the_tag_genome_is_cleaned_and_kept(cleaned):
    """Each genome defect of the fixture is dropped and counted; films 3, 4 and 5 lose a tag to a
    defect (out of range, absent, missing value), so only the complete vectors of 1 and 2 remain."""
    report, frames = cleaned
    assert report["genome"]["dropped"] == {"missing_values": 1, "out_of_range": 1, "unknown_tag": 1,
                                           "unknown_movie": 1, "duplicates": 1, "incomplete_vector": 9}
    assert report["genome"]["incomplete_movies"] == 3 and report["genome"]["movies"] == 2
    genome = frames["genome"]
    assert list(genome.columns) == ["movie_id", "tag_id", "relevance"]
    expected = [(m, t, r) for m, t, r in genome_rows() if m in (1, 2)]
    expected[expected.index((2, 1, 0.03))] = (2, 1, 0.04)      # the later of the duplicate pair
    assert [tuple(row) for row in genome.astype(object).itertuples(index=False, name=None)] == expected
    assert [tuple(row) for row in frames["genome_tags"].itertuples(index=False, name=None)] == GENOME_TAGS


def test_the_clean_genome_reaches_the_models_item_metadata(cleaned):
    import numpy as np

    from cinerec.batch.interactions import frames_item_metadata

    _, frames = cleaned
    items = np.sort(frames["ratings"]["movie_id"].unique())
    genome = frames_item_metadata(frames, items)["genome"]
    assert {int(i) for i, g in zip(items, genome) if g is not None} == {1, 2}
    np.testing.assert_array_equal(genome[2], [0.04, 0.08, 0.05, 0.90])


def test_a_release_without_genome_gives_empty_genome_frames(tmp_path):
    from cinerec.batch.preprocess import clean_genome

    genome, tags, report = clean_genome(load(write("ml-csv", tmp_path)))
    assert genome.empty and tags.empty and report["rows"] == {"input": 0, "clean": 0}
    assert list(genome.columns) == ["movie_id", "tag_id", "relevance"]
    assert genome.dtypes.to_dict() == {"movie_id": "int64", "tag_id": "int64", "relevance": "float64"}


def test_outputs_written_before_the_genome_read_back_with_an_empty_one(cleaned, tmp_path):
    import shutil

    report, _ = cleaned
    old = tmp_path / "old"
    shutil.copytree(report["path"], old)
    (old / "genome.parquet").unlink()
    (old / "genome_tags.parquet").unlink()
    frames = read_clean({**report, "path": str(old)})
    assert frames["genome"].empty and frames["genome_tags"].empty and len(frames["ratings"]) == len(RATINGS)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 4), st.sampled_from([x / 2 for x in range(1, 11)]),
                          st.integers(0, 3)), min_size=1, max_size=40), st.randoms())
def test_spark_pandas_and_the_streaming_state_keep_the_same_latest_rating(spark, raw, rnd):
    """The latest rating of each (user, film) is one rule (``core.events.supersedes``): Spark's
    cleaning, pandas frames (indexing, the pipeline) and the streaming state agree, ties of event
    time included (few users, films and times: ties are the common case), whatever the order."""
    from cinerec.batch.preprocess import latest_ratings as spark_latest
    from cinerec.core.dataset import latest_ratings
    from cinerec.streaming.stateful import EntityState

    rows = raw[:]
    rnd.shuffle(rows)
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"])
    kept = lambda f: {(int(u), int(m)): (float(r), int(ts))                                   # noqa: E731
                      for u, m, r, ts in f[["user_id", "movie_id", "rating", "ts"]].itertuples(index=False)}
    states: dict[int, EntityState] = {}
    for i, (user, movie, rating, ts) in enumerate(raw):
        states.setdefault(user, EntityState()).apply(movie, rating, ts, f"{i:04d}")
    streamed = {(u, m): (r, ts) for u, state in states.items() for m, (r, ts, _) in state.ratings.items()}
    assert kept(spark_latest(spark.createDataFrame(frame)).toPandas()) == kept(latest_ratings(frame)) == streamed


def test_film_statistics_are_the_same_through_the_batch_and_the_streaming_path(cleaned):
    """The indexer's film documents (from Spark's features) and the streaming job's (from its
    keyed state's totals) agree for every film: count, mean, Bayesian average, likes."""
    from collections import namedtuple

    import numpy as np

    from cinerec.search.documents import film_statistics
    from cinerec.streaming.processor import FILM_COLUMNS, Model, RatingProcessor
    from cinerec.streaming.stateful import EntityState

    report, frames = cleaned
    batch = dict(film_statistics(frames["movies"], frames["ratings"]))
    job = RatingProcessor(es=None, producer=None, dlq_topic="", model=Model([], np.zeros((0, 2)), 0.1, 1.0, "1"),
                          bayesian_prior=(report["bayesian_prior_count"], report["global_mean"]))
    film_row = namedtuple("FilmRow", FILM_COLUMNS)
    for movie, group in frames["ratings"].groupby("movie_id"):
        state = EntityState()
        for user, rating, ts in group[["user_id", "rating", "ts"]].itertuples(index=False):
            state.apply(int(user), float(rating), int(ts), "e")
        count, total, likes = state.totals
        streamed = job.film_document(film_row(movie, count, total, likes, 0, "[]", float("nan")))
        indexed = batch[str(movie)]
        for field in ("rating_count", "rating_mean", "bayesian_avg", "like_count"):
            assert streamed[field] == pytest.approx(indexed[field]), (movie, field)


def test_user_documents_are_the_same_through_the_batch_and_the_streaming_path(cleaned):
    """The indexer's user documents and the streaming job's (from a user's current ratings) agree
    field for field: liked and rated films, count, mean, last activity, privacy, model version.
    Without consent to personalisation neither holds a vector (the job's vector is the exact
    fold-in: tests/streaming/test_state.py)."""
    import numpy as np

    from cinerec.search.documents import RESEARCH, user_documents
    from cinerec.streaming.processor import Model, RatingProcessor
    from cinerec.streaming.stateful import EntityState

    _, frames = cleaned
    ratings = frames["ratings"]
    users = np.sort(ratings["user_id"].unique())
    choices = {**RESEARCH, "personalisation": False}
    batch = dict(user_documents(ratings, users, np.ones((len(users), 2)), "1", privacy=lambda user: choices))
    job = RatingProcessor(es=None, producer=None, dlq_topic="", model=Model([], np.zeros((0, 2)), 0.1, 1.0, "1"),
                          bayesian_prior=(1.0, 3.0))
    assert len(batch) == len(users) > 1
    for user, group in ratings.groupby("user_id"):
        state = EntityState()
        for movie, rating, ts in group[["movie_id", "rating", "ts"]].itertuples(index=False):
            state.apply(int(movie), float(rating), int(ts), "e")
        streamed = job.user_document(int(user), state.rows, choices)
        assert streamed == batch[str(user)], user

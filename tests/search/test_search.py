"""Indices and queries on the real (embedded) Elasticsearch API, from a tiny trained model."""

import threading
import uuid

import numpy as np
import pytest
from planted import BLOCK, block_of, planted_frames

from cinerec.batch.indexing import build_indices
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.core.artifact import ModelArtifact
from cinerec.search import indices, queries

pytestmark = pytest.mark.services

TITLES = {1: ("Toy Story", 1995), 2: ("Toy Soldiers", 1991), 3: ("Heat", 1995), 26: ("Heat", 1972),
          27: ("Misérables, Les", 1995)}


@pytest.fixture(scope="module")
def frames():
    data = planted_frames()
    movies = data["movies"]
    for movie, (title, year) in TITLES.items():
        movies.loc[movies["movie_id"] == movie, ["title", "year"]] = (title, year)
    ratings = data["ratings"]
    movies["rating_count"] = movies["movie_id"].map(ratings.groupby("movie_id").size()).fillna(0).astype(int)
    movies["rating_mean"] = movies["movie_id"].map(ratings.groupby("movie_id")["rating"].mean())
    movies["bayesian_avg"] = movies["rating_mean"]
    return data


@pytest.fixture(scope="module")
def artifact(frames):
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    model = create("als", {"rank": 8, "iterations": 8, "regularization": 0.05, "alpha": 2.0})
    model.fit(Interactions.build(ratings, users, items))
    return ModelArtifact("als", model.params, users, items, model.user_factors, model.item_factors)


@pytest.fixture(scope="module")
def es(fresh_indices, frames, artifact):
    build_indices(fresh_indices, frames, artifact, version=1)
    return fresh_indices


def titles(results):
    return [(r["title"], r["year"]) for r in results]


def test_exact_title_with_year_disambiguates(es):
    assert titles(queries.find_titles(es, "Heat (1972)"))[0] == ("Heat", 1972)
    assert titles(queries.find_titles(es, "Heat (1995)"))[0] == ("Heat", 1995)
    assert {t for t in titles(queries.find_titles(es, "Heat"))[:2]} == {("Heat", 1995), ("Heat", 1972)}


def test_as_you_type_prefix_and_fuzzy(es):
    assert {t for t, _ in titles(queries.find_titles(es, "toy s"))[:2]} == {"Toy Story", "Toy Soldiers"}
    assert titles(queries.find_titles(es, "Toy Stroy"))[0] == ("Toy Story", 1995)
    assert titles(queries.find_titles(es, "miserables"))[0] == ("Misérables, Les", 1995)


def test_also_watched_comes_from_the_same_taste_block_with_reasons(es):
    results = queries.also_watched(es, 5, size=5)
    assert len(results) == 5
    assert all(block_of(r["movie_id"]) == 0 for r in results)
    assert all(r["watched_together"] > 0 and "by" in r["reason"] for r in results)
    assert 5 not in [r["movie_id"] for r in results]


def test_similar_films_by_vector(es):
    results = queries.similar_films(es, BLOCK + 3, size=5)
    assert len(results) == 5 and BLOCK + 3 not in [r["movie_id"] for r in results]
    assert sum(block_of(r["movie_id"]) == 1 for r in results) >= 4


def test_user_recommendations_exclude_rated_films_and_filter(es):
    user = queries.get_user(es, 3)
    results = queries.recommend_for_user(es, user, size=5)
    assert results and not {str(r["movie_id"]) for r in results} & set(user["rated"])
    assert all(block_of(r["movie_id"]) == 0 for r in results)
    comedy = queries.recommend_for_user(es, user, size=5, genres=["Horror"])
    assert all("Horror" in r["genres"] for r in comedy)


def test_popular_fallback_and_cold_user(es):
    results = queries.popular(es, size=5, years=(1990, 2000))
    assert len(results) == 5 and all(1990 <= r["year"] <= 2000 for r in results)
    cold = queries.recommend_for_user(es, {"rated": ["1"]}, size=3)
    assert cold and all(r["reason"] == "popular with everyone" for r in cold)


def test_rebuild_swaps_aliases_without_failing_a_query_and_prunes(es, frames, artifact):
    failures, stop = [], threading.Event()

    def query_loop():
        while not stop.is_set():
            try:
                assert queries.find_titles(es, "Toy Story")
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                failures.append(err)
    thread = threading.Thread(target=query_loop)
    thread.start()
    try:
        for version in (2, 3, 4, 5):
            report = build_indices(es, frames, artifact, version=version, keep=2)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert report["aliases"]["films"] == ["films-v5"]
    assert indices.versions(es, "films") == ["films-v4", "films-v5"]


def test_rebuilding_the_same_version_is_idempotent(es, frames, artifact):
    name = f"scratch{uuid.uuid4().hex[:6]}"
    docs = [("1", {"movie_id": 1, "title": "A"}), ("2", {"movie_id": 2, "title": "B"})]
    es.indices.create(index=name)
    indices.bulk_write(es, name, docs)
    indices.bulk_write(es, name, docs)
    es.indices.refresh(index=name)
    assert es.count(index=name)["count"] == 2
    es.indices.delete(index=name)


def test_exact_title_is_the_cheap_hot_path(es):
    assert queries.exact_title(es, "Heat (1972)")["year"] == 1972
    assert queries.exact_title(es, "Heat")["title"] == "Heat"
    assert queries.exact_title(es, "Heat (2001)") is None
    assert queries.exact_title(es, "heat") is None   # exact means exact; find_titles is the forgiving one


def test_an_index_built_by_an_older_version_gets_the_new_fields(es):
    old = indices.mapping("film_stats")
    del old["mappings"]["properties"]["trending_until"]              # as built before the field existed
    es.indices.create(index="film_stats-old", settings=old["settings"], mappings=old["mappings"])
    try:
        with pytest.raises(Exception, match="strict"):
            es.index(index="film_stats-old", id="1", document={"trending_until": 5})
        assert indices.add_missing_fields(es, "film_stats", "film_stats-old") == ["trending_until"]
        es.index(index="film_stats-old", id="1", document={"trending_until": 5}, refresh=True)
        assert es.get(index="film_stats-old", id="1")["_source"]["trending_until"] == 5
        assert indices.add_missing_fields(es, "film_stats", "film_stats-old") == []
    finally:
        es.indices.delete(index="film_stats-old")


def test_the_stream_rescores_also_watched_exactly_like_the_index_build(es):
    from cinerec.streaming.neighbours import also_watched_updates

    updates = dict(also_watched_updates(es, [5, BLOCK + 4], films="films", film_stats="film_stats",
                                        users="users", size=50))
    for movie in (5, BLOCK + 4):
        stored = es.get(index="film_lists", id=str(movie))["_source"]["also_watched"]
        rescored = updates[str(movie)]["also_watched"]
        assert stored and [e["movie_id"] for e in rescored] == [e["movie_id"] for e in stored]
        assert [e["score"] for e in rescored] == pytest.approx([e["score"] for e in stored], abs=1e-5)
        assert [e["together"] for e in rescored] == [e["together"] for e in stored]

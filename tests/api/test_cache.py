"""The API's in-process caches follow their sources: each cached answer changes within its stated
bound (search/cache.py) once the document behind it changes, on the real Elasticsearch.
A controllable clock stands for time passing, so each bound is checked on both sides."""

import time

import pytest
from elasticsearch import helpers

from cinerec.search import queries
from cinerec.search.cache import LOOKUPS, ServedFilms
from cinerec.search.indices import bulk_write, create_index, swap_alias

pytestmark = pytest.mark.services


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(indexed, fresh_indices, settings):
    clock = Clock()
    return ServedFilms(fresh_indices, settings.api, clock=clock, refresh_ahead=False), clock


def _lookups(cache: str, outcome: str) -> float:
    return LOOKUPS.labels(cache, outcome)._value.get()


def test_statistics_follow_their_document_within_stats_ttl(served, fresh_indices, settings):
    films, clock = served
    before = films.film_by_title("Heat (1995)")["rating_count"]
    fresh_indices.update(index=queries.FILM_STATS, id="26", doc={"rating_count": before + 1000}, refresh=True)
    try:
        clock.now += settings.api.stats_ttl_s * 0.5
        assert films.film_by_title("Heat (1995)")["rating_count"] == before          # within the bound: cached
        clock.now += settings.api.stats_ttl_s * 0.5
        assert films.film_by_title("Heat (1995)")["rating_count"] == before + 1000   # bound passed: the source
    finally:
        fresh_indices.update(index=queries.FILM_STATS, id="26", doc={"rating_count": before}, refresh=True)


def test_statistics_in_use_are_read_again_before_they_expire(indexed, fresh_indices, settings):
    """Refresh ahead: the statistics of a film read lately are re-read by the process's own
    thread, so the new count is in the cache before any request asks again."""
    films = ServedFilms(fresh_indices, settings.api)
    before = films.statistics(["26"])["26"]["rating_count"]
    fresh_indices.update(index=queries.FILM_STATS, id="26", doc={"rating_count": before + 5}, refresh=True)
    try:
        deadline = time.monotonic() + 5
        while films.stats.items["26"][1]["rating_count"] != before + 5:    # the stored value, no request
            assert time.monotonic() < deadline, "the statistics were not read again"
            time.sleep(0.05)
    finally:
        fresh_indices.update(index=queries.FILM_STATS, id="26", doc={"rating_count": before}, refresh=True)


def test_stored_lists_follow_their_document_within_lists_ttl(served, fresh_indices, settings):
    films, clock = served
    assert settings.api.lists_ttl_s <= settings.streaming.also_watched_refresh_s
    first = films.also_watched_or_popular(1, size=3)
    stored = queries.stored_lists(fresh_indices, 1)
    reordered = stored["also_watched"][1:] + stored["also_watched"][:1]
    fresh_indices.update(index=queries.FILM_LISTS, id="1", doc={"also_watched": reordered})
    try:
        clock.now += settings.api.lists_ttl_s - 0.01
        assert films.also_watched_or_popular(1, size=3) == first
        clock.now += 0.01
        moved = films.also_watched_or_popular(1, size=3)
        assert [f["movie_id"] for f in moved] == [e["movie_id"] for e in reordered[:3]] != \
            [f["movie_id"] for f in first]
    finally:
        fresh_indices.update(index=queries.FILM_LISTS, id="1", doc={"also_watched": stored["also_watched"]})


def test_knn_hits_are_reused_only_for_the_same_vector_and_rated_films(served, fresh_indices):
    films, _ = served
    user = next(u for u in (queries.get_user(fresh_indices, i) for i in range(1, 50)) if u and "vector" in u)
    first = films.recommend_for_user(user, size=5)
    hits = _lookups("knn", "hit")
    assert films.recommend_for_user(user, size=5) == first and _lookups("knn", "hit") == hits + 1
    top = str(first[0]["movie_id"])                         # the user rates their top film: it is excluded
    rated = films.recommend_for_user({**user, "rated": [*user.get("rated", []), top]}, size=5)
    assert top not in [str(f["movie_id"]) for f in rated] and _lookups("knn", "hit") == hits + 1
    turned = films.recommend_for_user({**user, "vector": [-v for v in user["vector"]]}, size=5)
    assert [f["movie_id"] for f in turned] != [f["movie_id"] for f in first]
    uncached = queries.recommend_for_user(fresh_indices, user, size=5)       # what an uncached read gives
    assert [{**f, "reason": None} for f in uncached] == [{**f, "reason": None} for f in first]
    assert all(f["reason"].startswith("because you liked ") for f in first)


def test_title_map_follows_the_films_alias(served, fresh_indices, settings):
    films, clock = served
    assert films.film_by_title("Heat (1995)")["movie_id"] == 26
    served_version = films.catalogue().version
    docs = [(h["_id"], h["_source"]) for h in helpers.scan(fresh_indices, index=served_version)]
    copy = create_index(fresh_indices, queries.FILMS, 99, dims=len(next(d["vector"] for _, d in docs if "vector" in d)))
    bulk_write(fresh_indices, copy, [(i, {**d, "title": "Heat Wave"} if i == "26" else d) for i, d in docs])
    fresh_indices.indices.refresh(index=copy)
    swap_alias(fresh_indices, queries.FILMS, copy)
    try:
        assert films.film_by_title("Heat (1995)")["movie_id"] == 26    # alias not checked again yet
        clock.now += settings.api.alias_check_s
        assert films.film_by_title("Heat (1995)")["movie_id"] == 26    # the new version is being loaded
        assert films.settled().version == copy                          # then served
        assert films.film_by_title("Heat (1995)") is None
        assert films.film_by_title("heat wave")["movie_id"] == 26
    finally:
        swap_alias(fresh_indices, queries.FILMS, served_version)
        fresh_indices.indices.delete(index=copy)


def test_a_rating_count_reaches_the_title_route_within_a_second(indexed, fresh_indices, settings):
    """The same bound end to end, on the real clock: the route's film shows the new count ≤ 1 s later."""
    from cinerec.api import create_app

    client = create_app(settings).test_client()
    before = client.get("/recommendations?title=Toy Story (1995)").get_json()["film"]["rating_count"]
    fresh_indices.update(index=queries.FILM_STATS, id="1", doc={"rating_count": before + 7}, refresh=True)
    try:
        time.sleep(settings.api.stats_ttl_s)
        assert client.get("/recommendations?title=Toy Story (1995)").get_json()["film"]["rating_count"] == before + 7
    finally:
        fresh_indices.update(index=queries.FILM_STATS, id="1", doc={"rating_count": before}, refresh=True)

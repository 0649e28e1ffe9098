"""Query builders and runners over the ``films`` and ``users`` aliases (Elasticsearch 8 DSL).

Every request is a lookup: a GET or ``mget`` by id, a ``term`` query on a keyword, a
``match_bool_prefix`` for as-you-type titles (core Lucene; the embedded distribution has no
``analysis-common``, so no edge n-grams and no folding filter: titles are folded in Python), or
one top-level ``knn`` on the films' HNSW vectors. "Also watched" and "similar" are lists stored
per film in ``film_lists``, not computed per request.
"""

from __future__ import annotations

import re

from elasticsearch import Elasticsearch

from cinerec.platform.elasticsearch import get_source

from .documents import SUMMARY_FIELDS, searchable_title, summary

FILMS, FILM_STATS, FILM_LISTS, USERS = "films", "film_stats", "film_lists", "users"
_TITLE_YEAR = re.compile(r"^\s*(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
SOURCE = list(SUMMARY_FIELDS)
CATALOGUE = ["movie_id", "title", "year", "genres"]      # what a hit on ``films`` shows; the rest is joined
RECOMMENDING = ["user_id", "vector", "rated", "ratings", "rating_count", "last_ts", "model_version"]
HITS = "hits.hits._id,hits.hits._score,hits.hits._source"  # filter_path: what a search's caller reads


def parse_title(text: str) -> tuple[str, int | None]:
    """'Heat (1995)' -> ('Heat', 1995): the year disambiguates remakes."""
    match = _TITLE_YEAR.match(text or "")
    return (match["title"], int(match["year"])) if match else ((text or "").strip(), None)


def find_titles(es: Elasticsearch, text: str, *, size: int = 10, fuzzy: bool = True) -> list[dict]:
    """Exact title first, then as-you-type prefix matches, then fuzzy matches."""
    return rank_titles(with_statistics(es, title_hits(es, text, size=size, fuzzy=fuzzy)))


def title_hits(es: Elasticsearch, text: str, *, size: int = 10, fuzzy: bool = True, index: str = FILMS) -> list[dict]:
    """The search behind ``find_titles``: catalogue fields and score of each hit, no statistics."""
    title, year = parse_title(text)
    folded = searchable_title(title)
    should = [{"term": {"title.raw": {"value": title, "boost": 20}}},
              {"match_bool_prefix": {"title_search": {"query": folded, "operator": "and", "boost": 3}}},
              {"match": {"title_search": {"query": folded, "operator": "and", "boost": 2}}}]
    if fuzzy:
        should.append({"match": {"title_search": {"query": folded, "fuzziness": "AUTO", "prefix_length": 1}}})
    query = {"bool": {"should": should, "minimum_should_match": 1,
                      "filter": [{"term": {"year": year}}] if year else []}}
    return [_film(h) for h in _hits(es.search(index=index, query=query, size=size, filter_path=HITS,
                                             source=CATALOGUE))]  # type: ignore[arg-type]  # stub omits field lists


def rank_titles(films: list[dict]) -> list[dict]:
    """Among equally good title matches prefer the film more people rated."""
    return sorted(films, key=lambda f: (-round(f["score"], 3), -(f.get("rating_count") or 0)))


def exact_title(es: Elasticsearch, text: str) -> dict | None:
    """The film whose title is exactly ``text`` (with its year, if given); the most rated one
    if several share the title. One cheap ``term`` query on ``film_stats``: the hot path of
    title requests."""
    title, year = parse_title(text)
    filters = [{"term": {"title": title}}] + ([{"term": {"year": year}}] if year else [])
    hits = es.search(index=FILM_STATS, query={"bool": {"filter": filters}}, size=1, sort=[{"rating_count": "desc"}],
                     source=SOURCE)["hits"]["hits"]  # type: ignore[arg-type]  # stub omits field lists
    return _film(hits[0]) if hits else None


def get_film(es: Elasticsearch, movie_id: int, *, with_vector: bool = False) -> dict | None:
    """The film's document with its statistics, without its search-only field (and, unless asked,
    its vector): one ``mget`` over ``films`` and ``film_stats``."""
    hidden = ["title_search"] + ([] if with_vector else ["vector"])
    film, stats = es.mget(docs=[{"_index": FILMS, "_id": str(movie_id), "_source": {"excludes": hidden}},
                                {"_index": FILM_STATS, "_id": str(movie_id)}])["docs"]
    if not film.get("found"):
        return None
    return {**(stats.get("_source") or {}), **film["_source"]}


def with_statistics(es: Elasticsearch, films: list[dict]) -> list[dict]:
    """Films (hits on ``films``) with their statistics from ``film_stats``: one ``mget`` by id."""
    if not films:
        return films
    return joined(films, statistics(es, [str(f["movie_id"]) for f in films]))


def statistics(es: Elasticsearch, ids: list[str]) -> dict[str, dict]:
    """``film_stats`` documents by id (one ``mget``); films without statistics are left out."""
    docs = es.mget(index=FILM_STATS, ids=ids, source=SOURCE, filter_path="docs._id,docs._source")["docs"]
    return {d["_id"]: d["_source"] for d in docs if "_source" in d}


def joined(films: list[dict], stats: dict[str, dict]) -> list[dict]:
    return [{**stats.get(str(f["movie_id"]), {}), **f} for f in films]


def get_user(es: Elasticsearch, user_id: int, *, index: str = USERS, fields: list[str] | None = None) -> dict | None:
    """The user document (real-time GET); ``fields``: only these (``RECOMMENDING``: what a
    recommendation reads, without the long ``liked`` list)."""
    return get_source(es, index, str(user_id), **({"source_includes": fields} if fields else {}))


def also_watched(es: Elasticsearch, movie_id: int, *, size: int = 10) -> list[dict]:
    """"Users who liked X also liked": the film's stored list (``film_lists``; ``core.neighbours``:
    co-likes scored for significance, blended with item vectors), computed by ``cinerec index``
    and kept current by the streaming job. One GET: each entry holds what a result shows."""
    return also_watched_entries(stored_lists(es, movie_id), size=size)


def also_watched_entries(stored: dict | None, *, size: int) -> list[dict]:
    """The first ``size`` entries of a ``film_lists`` document's "also watched" list, as results."""
    if not stored:
        return []
    title = stored.get("title", stored.get("movie_id"))
    return [{**_entry(e), "watched_together": e["together"],
             "reason": f"liked together with {title} by {e['together']} users"}
            for e in stored.get("also_watched", [])[:size]]


def similar_films(es: Elasticsearch, movie_id: int, *, size: int = 10) -> list[dict]:
    """Nearest films by item vector (inner product), the film itself excluded: the film's stored
    list, computed at index time (item vectors change only with the model). One GET."""
    return similar_entries(stored_lists(es, movie_id), size=size)


def similar_entries(stored: dict | None, *, size: int) -> list[dict]:
    """The first ``size`` entries of a ``film_lists`` document's "similar" list, as results."""
    if not stored:
        return []
    return [{**_entry(e), "reason": f"similar to {stored['title']}"} for e in stored.get("similar", [])[:size]]


def recommend_for_user(es: Elasticsearch, user: dict, *, size: int = 10, genres: list[str] | None = None,
                       years: tuple[int | None, int | None] = (None, None), films: str = FILMS) -> list[dict]:
    """kNN on films with the user's vector, excluding what they rated; filters by genre and year.
    ``films``: the films index (a canary serves from the challenger's own version)."""
    if "vector" not in user:
        return popular(es, size=size, genres=genres, years=years, exclude=user.get("rated", []))
    hits = knn_hits(es, user["vector"], size, exclude=user.get("rated", []), genres=genres, years=years, index=films)
    return for_user(with_statistics(es, hits))


def for_user(films: list[dict]) -> list[dict]:
    return [{**f, "reason": "matches your ratings"} for f in films]


def popular(es: Elasticsearch, *, size: int = 10, genres: list[str] | None = None,
            years: tuple[int | None, int | None] = (None, None), exclude: list[str] | None = None) -> list[dict]:
    """Fallback for unknown users and cold films: best Bayesian average among films with ratings."""
    query = {"bool": {"filter": [{"range": {"rating_count": {"gte": 1}}}, *_filters(genres, years)],
                      "must_not": [{"ids": {"values": list(exclude or [])}}]}}
    hits = es.search(index=FILM_STATS, query=query, size=size,
                     sort=[{"bayesian_avg": "desc"}, {"rating_count": "desc"}],
                     source=SOURCE)["hits"]["hits"]  # type: ignore[arg-type]  # stub omits field lists
    return [{**_film(h), "reason": "popular with everyone"} for h in hits]


def proposals(es: Elasticsearch, *, size: int = 12, per_genre: int = 2) -> list[dict]:
    """Films to propose to a new person: the best-rated of each of the most rated genres, taken
    in turn (one aggregation with ``top_hits``), so no one genre fills the list."""
    aggs = {"genres": {"terms": {"field": "genres", "size": size, "order": {"_count": "desc"}},
                       "aggs": {"best": {"top_hits": {"size": per_genre + size // 2, "_source": SOURCE,
                                                      "sort": [{"bayesian_avg": "desc"}, {"rating_count": "desc"}]}}}}}
    query = {"range": {"rating_count": {"gte": 1}}}
    buckets = es.search(index=FILM_STATS, size=0, query=query, aggs=aggs)["aggregations"]["genres"]["buckets"]
    chosen: dict[int, dict] = {}
    for rank in range(per_genre + size // 2):
        for bucket in buckets:
            hits = bucket["best"]["hits"]["hits"]
            if rank < len(hits) and len(chosen) < size and int(hits[rank]["_source"]["movie_id"]) not in chosen:
                film = hits[rank]["_source"]
                chosen[int(film["movie_id"])] = {**film, "reason": f"among the best-rated {bucket['key']} films"}
    return list(chosen.values())


def trending(es: Elasticsearch, *, size: int = 10, genres: list[str] | None = None) -> list[dict]:
    """Films rated most in the streaming job's trending window (``streaming.trending_window_s``)."""
    query = {"bool": {"filter": [{"range": {"trending": {"gt": 0}}}, *_filters(genres, (None, None))]}}
    hits = es.search(index=FILM_STATS, query=query, size=size, sort=[{"trending": "desc"}, {"rating_count": "desc"}],
                     source=SOURCE + ["trending"])["hits"]["hits"]  # type: ignore[arg-type]  # stub omits field lists
    return [{**_film(h), "reason": f"rated {int(h['_source']['trending'])} times lately"} for h in hits]


# -- helpers ----------------------------------------------------------------------------------

def knn_hits(es: Elasticsearch, vector: list[float], size: int, *, exclude: list[str],
             genres: list[str] | None = None, years=(None, None), index: str = FILMS) -> list[dict]:
    """The films nearest to ``vector`` (catalogue fields and score, no statistics)."""
    knn = {"field": "vector", "query_vector": vector, "k": size,
           "num_candidates": max(100, size * 10),
           "filter": {"bool": {"must_not": [{"ids": {"values": list(exclude)}}],
                               "filter": _filters(genres, years)}}}
    return [_film(h) for h in _hits(es.search(index=index, knn=knn, size=size, filter_path=HITS,
                                             source=CATALOGUE))]  # type: ignore[arg-type]  # stub omits field lists


def _hits(response) -> list[dict]:
    """The hits of a search asked with ``filter_path=HITS`` (which drops ``hits`` when there are none)."""
    return response.get("hits", {}).get("hits", [])


def _filters(genres: list[str] | None, years) -> list[dict]:
    out: list[dict] = []
    if genres:
        out.append({"terms": {"genres": list(genres)}})
    low, high = years
    if low is not None or high is not None:
        out.append({"range": {"year": {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}}})
    return out


def stored_lists(es: Elasticsearch, movie_id: int) -> dict | None:
    """A film's ``film_lists`` document (its "also watched" and "similar" lists), None if it has none."""
    return get_source(es, FILM_LISTS, str(movie_id))


def _entry(stored: dict) -> dict:
    return {**summary(stored), "score": stored["score"]}


def _film(hit: dict) -> dict:
    return {**hit["_source"], "score": hit.get("_score")}


def model_health(es: Elasticsearch) -> dict:
    """Whether a model is served: the films index exists and names its model version."""
    try:
        if not es.indices.exists_alias(name=FILMS):
            return {"healthy": False, "error": "no films index: run `cinerec index`"}
        hit = es.search(index=FILMS, size=1,
                        source=["model_version"])["hits"]["hits"]  # type: ignore[arg-type]  # stub omits field lists
        return {"healthy": bool(hit), "version": hit[0]["_source"].get("model_version") if hit else None}
    except Exception as err:  # noqa: BLE001 - reported, not raised: this is the health check
        return {"healthy": False, "error": str(err)[:200]}

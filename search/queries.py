"""Query builders and runners over the ``films`` and ``users`` aliases (Elasticsearch 8 DSL).

Only what both Elasticsearch 8 and the embedded stand-in serve: ``bool``/``match``/``term``
queries, an edge-n-gram subfield for as-you-type titles (no ``search_as_you_type`` type), a
``terms`` aggregation scored client-side for significance (no ``significant_terms``), and
top-level ``knn`` with filters.
"""

from __future__ import annotations

import math
import re

from elasticsearch import Elasticsearch

FILMS, USERS = "films", "users"
_TITLE_YEAR = re.compile(r"^\s*(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
SOURCE = ["movie_id", "title", "year", "genres", "rating_count", "bayesian_avg", "like_count"]


def parse_title(text: str) -> tuple[str, int | None]:
    """'Heat (1995)' -> ('Heat', 1995): the year disambiguates remakes."""
    match = _TITLE_YEAR.match(text or "")
    return (match["title"], int(match["year"])) if match else ((text or "").strip(), None)


def find_titles(es: Elasticsearch, text: str, *, size: int = 10, fuzzy: bool = True) -> list[dict]:
    """Exact title first, then as-you-type prefix matches, then fuzzy matches."""
    title, year = parse_title(text)
    should = [{"term": {"title.raw": {"value": title, "boost": 20}}},
              {"match": {"title.prefix": {"query": title, "operator": "and", "boost": 3}}},
              {"match": {"title": {"query": title, "operator": "and", "boost": 2}}}]
    if fuzzy:
        should.append({"match": {"title": {"query": title, "fuzziness": "AUTO", "prefix_length": 1}}})
    query = {"bool": {"should": should, "minimum_should_match": 1,
                      "filter": [{"term": {"year": year}}] if year else []}}
    hits = es.search(index=FILMS, query=query, size=size, source=SOURCE)["hits"]["hits"]
    # Among equally good matches prefer the film more people rated.
    return [_film(h) for h in sorted(hits, key=lambda h: (-round(h["_score"], 3),
                                                          -(h["_source"].get("rating_count") or 0)))]


def exact_title(es: Elasticsearch, text: str) -> dict | None:
    """The film whose title is exactly ``text`` (with its year, if given); the most rated one
    if several share the title. One cheap ``term`` query: the hot path of title requests."""
    title, year = parse_title(text)
    filters = [{"term": {"title.raw": title}}] + ([{"term": {"year": year}}] if year else [])
    hits = es.search(index=FILMS, query={"bool": {"filter": filters}}, size=1, source=SOURCE,
                     sort=[{"rating_count": "desc"}])["hits"]["hits"]
    return _film(hits[0]) if hits else None


def get_film(es: Elasticsearch, movie_id: int, *, with_vector: bool = False) -> dict | None:
    result = es.options(ignore_status=404).get(index=FILMS, id=str(movie_id))
    if not result.get("found"):
        return None
    film = dict(result["_source"])
    if not with_vector:
        film.pop("vector", None)
    return film


def get_user(es: Elasticsearch, user_id: int) -> dict | None:
    result = es.options(ignore_status=404).get(index=USERS, id=str(user_id))
    return result["_source"] if result.get("found") else None


def also_watched(es: Elasticsearch, movie_id: int, *, size: int = 10, candidates: int = 200,
                 similarity_weight: float = 0.3) -> list[dict]:
    """"Users who liked X also liked": co-likes scored for significance, blended with vectors.

    n_x users liked X; n_c liked candidate c; co of them liked both; N users in all.
    JLH significance (Elasticsearch's significant_terms heuristic, computed here):
        fg = co / n_x,  bg = n_c / N,  jlh = (fg − bg) · fg / bg
    Final score: (1 − w) · jlh / max(jlh) + w · item-vector similarity (0..1).
    """
    liked_by = {"term": {"liked": str(movie_id)}}
    response = es.search(index=USERS, query=liked_by, size=0, track_total_hits=True,
                         aggs={"co": {"terms": {"field": "liked", "size": candidates + 1}}})
    n_x = response["hits"]["total"]["value"]
    total_users = es.count(index=USERS)["count"]
    buckets = [b for b in response["aggregations"]["co"]["buckets"] if b["key"] != str(movie_id)]
    if not n_x or not buckets:
        return []
    films = _films_by_id(es, [int(b["key"]) for b in buckets])
    target = get_film(es, movie_id, with_vector=True) or {}
    scored = []
    for bucket in buckets:
        film = films.get(int(bucket["key"]))
        if film is None or not film.get("like_count"):
            continue
        fg, bg = bucket["doc_count"] / n_x, film["like_count"] / total_users
        jlh = (fg - bg) * fg / bg if fg > bg else 0.0
        scored.append((jlh, bucket["doc_count"], film))
    top_jlh = max((s[0] for s in scored), default=0.0) or 1.0
    results = []
    for jlh, together, film in scored:
        similarity = _cosine(target.get("vector"), film.pop("vector", None))
        score = (1 - similarity_weight) * jlh / top_jlh + similarity_weight * (similarity + 1) / 2
        results.append({**film, "score": score, "watched_together": together,
                        "reason": f"liked together with {target.get('title', movie_id)} by {together} users"})
    return sorted(results, key=lambda r: -r["score"])[:size]


def similar_films(es: Elasticsearch, movie_id: int, *, size: int = 10) -> list[dict]:
    """Nearest films by item vector (inner product), the film itself excluded."""
    film = get_film(es, movie_id, with_vector=True)
    if not film or "vector" not in film:
        return []
    hits = _knn(es, film["vector"], size, exclude=[str(movie_id)])
    return [{**f, "reason": f"similar to {film['title']}"} for f in hits]


def recommend_for_user(es: Elasticsearch, user: dict, *, size: int = 10, genres: list[str] | None = None,
                       years: tuple[int | None, int | None] = (None, None)) -> list[dict]:
    """kNN on films with the user's vector, excluding what they rated; filters by genre and year."""
    if "vector" not in user:
        return popular(es, size=size, genres=genres, years=years, exclude=user.get("rated", []))
    hits = _knn(es, user["vector"], size, exclude=user.get("rated", []), genres=genres, years=years)
    return [{**f, "reason": "matches your ratings"} for f in hits]


def popular(es: Elasticsearch, *, size: int = 10, genres: list[str] | None = None,
            years: tuple[int | None, int | None] = (None, None), exclude: list[str] | None = None) -> list[dict]:
    """Fallback for unknown users and cold films: best Bayesian average among films with ratings."""
    query = {"bool": {"filter": [{"range": {"rating_count": {"gte": 1}}}, *_filters(genres, years)],
                      "must_not": [{"ids": {"values": list(exclude or [])}}]}}
    hits = es.search(index=FILMS, query=query, size=size, source=SOURCE,
                     sort=[{"bayesian_avg": "desc"}, {"rating_count": "desc"}])["hits"]["hits"]
    return [{**_film(h), "reason": "popular with everyone"} for h in hits]


def trending(es: Elasticsearch, *, size: int = 10, genres: list[str] | None = None) -> list[dict]:
    """Films rated most in the streaming job's trending window (``streaming.trending_window_s``)."""
    query = {"bool": {"filter": [{"range": {"trending": {"gt": 0}}}, *_filters(genres, (None, None))]}}
    hits = es.search(index=FILMS, query=query, size=size, source=SOURCE + ["trending"],
                     sort=[{"trending": "desc"}, {"rating_count": "desc"}])["hits"]["hits"]
    return [{**_film(h), "reason": f"rated {int(h['_source']['trending'])} times lately"} for h in hits]


# -- helpers ----------------------------------------------------------------------------------

def _knn(es: Elasticsearch, vector: list[float], size: int, *, exclude: list[str],
         genres: list[str] | None = None, years=(None, None)) -> list[dict]:
    knn = {"field": "vector", "query_vector": vector, "k": size,
           "num_candidates": max(100, size * 10),
           "filter": {"bool": {"must_not": [{"ids": {"values": list(exclude)}}],
                               "filter": _filters(genres, years)}}}
    hits = es.search(index=FILMS, knn=knn, size=size, source=SOURCE)["hits"]["hits"]
    return [_film(h) for h in hits]


def _filters(genres: list[str] | None, years) -> list[dict]:
    out = []
    if genres:
        out.append({"terms": {"genres": list(genres)}})
    low, high = years
    if low is not None or high is not None:
        out.append({"range": {"year": {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}}})
    return out


def _films_by_id(es: Elasticsearch, ids: list[int]) -> dict[int, dict]:
    docs = es.mget(index=FILMS, ids=[str(i) for i in ids], source=SOURCE + ["vector"])["docs"]
    return {int(d["_id"]): dict(d["_source"]) for d in docs if d.get("found")}


def _film(hit: dict) -> dict:
    return {**hit["_source"], "score": hit.get("_score")}


def _cosine(a, b) -> float:
    if not a or not b:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0

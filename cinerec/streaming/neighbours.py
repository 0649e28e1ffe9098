"""Keeps the films' stored "also watched" lists current for the films the stream touched.

``cinerec index`` computes every list from the whole like matrix; between rebuilds, the job
re-scores the films whose likes changed, from Elasticsearch, off the critical path (a clock
thread, after the user documents are written):

    touched films ─msearch: users liked:X, terms(liked)─▶ (n_x, [(c, co)])
        ─mget film_stats: summaries, like_count; mget films: vector─▶ core.neighbours.score_candidates
        ─▶ film_lists.also_watched
"""

from __future__ import annotations

import numpy as np

from cinerec.core.neighbours import CANDIDATES, cosines, score_candidates
from cinerec.search.documents import SUMMARY_FIELDS, stored_lists


def also_watched_updates(es, movie_ids: list[int], *, films: str, film_stats: str, users: str, size: int,
                         candidates: int = CANDIDATES) -> list[tuple[str, dict]]:
    """Partial ``film_lists`` documents ``{"also_watched": [...]}`` for ``movie_ids``, scored like the index
    build (the same formula; counts from the ``users`` index as it is now)."""
    if not movie_ids:
        return []
    total_users = es.count(index=users)["count"]
    searches: list[dict] = []
    for movie in movie_ids:
        searches += [{"index": users}, {"size": 0, "track_total_hits": True,
                                        "query": {"term": {"liked": str(movie)}},
                                        "aggs": {"co": {"terms": {"field": "liked", "size": candidates + 1}}}}]
    answers = es.msearch(searches=searches)["responses"]
    co_counts = {}
    for movie, answer in zip(movie_ids, answers):
        if "error" in answer:
            raise RuntimeError(f"also-watched counts of film {movie}: {answer['error']}")
        buckets = [(int(b["key"]), b["doc_count"]) for b in answer["aggregations"]["co"]["buckets"]
                   if b["key"] != str(movie)][:candidates]
        co_counts[movie] = (answer["hits"]["total"]["value"], buckets)
    wanted = sorted({c for _, buckets in co_counts.values() for c, _ in buckets} | set(movie_ids))
    ids = [str(m) for m in wanted]
    found = {int(d["_id"]): d["_source"]
             for d in es.mget(index=film_stats, ids=ids, source=list(SUMMARY_FIELDS))["docs"] if d.get("found")}
    vectors = {int(d["_id"]): d["_source"]["vector"] for d in es.mget(index=films, ids=ids, source=["vector"])["docs"]
               if d.get("found") and "vector" in d["_source"]}
    unit = {m: v / n for m, vector in vectors.items()
            for v in [np.asarray(vector, dtype=float)] if (n := np.linalg.norm(v)) > 0}
    updates = []
    for movie, (n_x, buckets) in co_counts.items():
        chosen = [(c, co, int(found.get(c, {}).get("like_count") or 0)) for c, co in buckets]
        scored = score_candidates(n_x, total_users, chosen, cosines(unit, movie, [c for c, _ in buckets]), size=size)
        updates.append((str(movie), stored_lists({"also_watched": scored}, found)))
    return updates

"""What Elasticsearch holds about one user, and erasing it: the ``users`` document, the user's
events in ``ratings`` (the activity data) and their dead letters. Film statistics and lists are
aggregates, recomputed without the user by the streaming job when it applies the erasure."""

from __future__ import annotations

PERSONAL_INDICES = ("users", "ratings", "dead_letters")


def held_about(es, user_id: int, *, users: str = "users", ratings: str = "ratings", size: int = 10_000) -> dict:
    """The user's document and their rating events (newest first)."""
    found = es.options(ignore_status=404).get(index=users, id=str(user_id))
    events = es.search(index=ratings, size=size, query={"term": {"user_id": user_id}}, sort=[{"ts": "desc"}],
                       ignore_unavailable=True)["hits"]["hits"]
    return {"user_document": found.get("_source") if found.get("found") else None,
            "rating_events": [hit["_source"] for hit in events]}


def count_about(es, user_id: int, indices: tuple[str, ...] = PERSONAL_INDICES) -> dict[str, int]:
    """Documents per index that name the user id (after a refresh, so just-written ones count)."""
    es.indices.refresh(index=list(indices), ignore_unavailable=True)
    return {index: es.count(index=index, query={"term": {"user_id": user_id}}, ignore_unavailable=True)["count"]
            for index in indices}


def erase_documents(es, user_id: int, *, users: str = "users", ratings: str = "ratings",
                    dead_letters: str = "dead_letters", analytics_only: bool = False) -> None:
    """Deletes the user's documents (only their activity data when ``analytics_only``: consent to
    analytics withdrawn); waits until the deletes are visible. ``users`` is an alias over
    versioned indices (``search.indices.versioned_name``)."""
    if not analytics_only:                  # every version: the served one, a canary's, those kept for rollback
        delete_matching(es, f"{users}-v*", {"term": {"user_id": user_id}})
    for index in [ratings] if analytics_only else [ratings, dead_letters]:
        delete_matching(es, index, {"term": {"user_id": user_id}})


def delete_matching(es, index: str, query: dict, page: int = 5_000) -> int:
    """Deletes every document ``query`` matches; returns how many. (The embedded distribution
    lacks the reindex module and so ``_delete_by_query``: search the ids, bulk-delete them.)"""
    deleted = 0
    while True:
        es.indices.refresh(index=index, ignore_unavailable=True)
        hits = es.search(index=index, query=query, size=page, source=False, ignore_unavailable=True)["hits"]["hits"]
        if not hits:
            return deleted
        es.bulk(operations=[{"delete": {"_index": hit["_index"], "_id": hit["_id"]}} for hit in hits], refresh=True)
        deleted += len(hits)

"""A signed-in person's recommendations, with a reason each, before and after the streaming job
has folded their ratings in.

    ready    the user document has every rating they gave (its last_ts is their newest rating's):
             the served model's films, as the API's per-user route gives them, each explained by
             the liked film nearest to it under that model ("because you liked X")
    waiting  not yet: the stored "also watched" lists of the films they liked, merged
             ("people who liked X also liked this") — never an empty page
    non_personal  without consent to personalisation: films popular with everyone, nothing
             computed from their own ratings (but not the films they rated again)
"""

from __future__ import annotations

from cinerec.core.events import LIKED
from cinerec.platform.accounts import Person
from cinerec.search import queries

from ..clients import clients


def for_person(person: Person, k: int) -> dict:
    es = clients().es
    if not person.ratings:
        return {"status": "no_picks", "results": []}
    if not person.consents_to("personalisation"):
        exclude = sorted({str(m) for m, _, _ in person.ratings})
        return {"status": "non_personal", "results": [{**f, "reason": "popular with everyone"} for f in
                                                      queries.popular(es, size=k, exclude=exclude)]}
    user = queries.get_user(es, person.user_id)
    rated = {str(m) for m, _, _ in person.ratings}
    if user and user.get("last_ts") is not None and user["last_ts"] >= person.last_rating_ts:
        return {"status": "ready", "results": clients().films.recommend_for_user(user, size=k),
                "based_on": {"ratings": user.get("rating_count"), "model_version": user.get("model_version")}}
    liked = [m for m, r, _ in reversed(person.ratings) if r >= LIKED] or [m for m, _, _ in person.ratings]
    return {"status": "waiting", "results": _co_liked(liked, rated, k)}


def _co_liked(liked: list[int], rated: set[str], k: int) -> list[dict]:
    """Round robin over the "also watched" lists of the liked films, skipping what they rated."""
    es, seen, liked = clients().es, set(rated), liked[:10]
    chosen: list[dict] = []
    titles = {d["_id"]: d["_source"]["title"] for d in es.mget(index=queries.FILMS, ids=[str(m) for m in liked],
                                                               source=["title"])["docs"] if d.get("found")}
    lists = [[{**e, "reason": f"people who liked {titles.get(str(m), m)} also liked this"}
              for e in queries.also_watched(es, m, size=k * 2)] for m in liked]
    for rank in range(k * 2):
        for entries in lists:
            if rank < len(entries) and str(entries[rank]["movie_id"]) not in seen and len(chosen) < k:
                chosen.append(entries[rank])
                seen.add(str(entries[rank]["movie_id"]))
    if len(chosen) < k:
        chosen += queries.popular(es, size=k - len(chosen), exclude=sorted(seen))
    return chosen

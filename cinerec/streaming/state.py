"""The rules of streaming state (pure logic; ``streaming.stateful`` keeps the state in Spark).

A user's state is their current rating of each film. A re-rating replaces the old value; the
later event time wins (ties broken by event id), so the state after a set of events does not
depend on the order they arrive in. Each change yields a film-statistics delta, and the user's
vector is re-solved exactly from the whole state with ``core.foldin`` (no drift).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from cinerec.core.events import RatingEvent
from cinerec.core.foldin import FoldIn, solve_user
from cinerec.search.documents import LIKED_THRESHOLD, user_document

LIKED = LIKED_THRESHOLD        # the indexer's like: users.liked and films.like_count mean the same


def supersedes(current: tuple | None, ts: int, event_id: str) -> bool:
    """Whether an event (ts, event_id) replaces ``current`` = (rating, ts, event id) or None."""
    return current is None or (current[1], current[2]) < (ts, event_id)


def film_totals(totals: tuple[int, float, int], old: float | None, new: float) -> tuple[int, float, int]:
    """A film's (count, rating sum, likes) after a rating ``new`` replaces ``old`` (None: first)."""
    count, total, likes = totals
    return (count + (old is None), total + new - (old or 0.0), likes + (new >= LIKED) - (old is not None
                                                                                          and old >= LIKED))


def film_totals_without(totals: tuple[int, float, int], old: float) -> tuple[int, float, int]:
    """A film's (count, rating sum, likes) after its rating ``old`` is removed (an erasure)."""
    count, total, likes = totals
    return (count - 1, total - old, likes - (old >= LIKED))


TRENDING_BUCKET_MS = 60_000   # trending counts ratings per minute of event time

# The rows the state step hands the driver, typed (``RatingState`` -> ``RatingProcessor``): an
# accepted rating in its own columns; a user's or film's state and a dead letter as ``payload``.
OUTPUT_SCHEMA = ("kind string, entity long, event_id string, user_id long, movie_id long, rating double, ts long, "
                 "source string, record_ts long, source_partition long, source_offset long, analytics boolean, "
                 "payload string")
OUTPUT_COLUMNS = [part.split()[0] for part in OUTPUT_SCHEMA.split(", ")]
SOURCE_COLUMNS = ["record_ts", "source_partition", "source_offset"]   # where an accepted event came from


def live_buckets(buckets: dict[int, int], now: int, window_ms: int) -> dict[int, int]:
    """The trending buckets (bucket start -> ratings) still inside the window ending ``now``."""
    return {b: n for b, n in buckets.items() if b + TRENDING_BUCKET_MS > now - window_ms}


def trend_fields(buckets: dict[int, int], window_ms: int) -> dict:
    """A film's trending fields: the count over the window, its buckets, and when the oldest
    bucket leaves the window (``trending_until``: when the count must drop even if nobody rates)."""
    return {"trending": sum(buckets.values()),
            "trending_buckets": json.dumps(sorted(buckets.items())),
            "trending_until": min(buckets) + TRENDING_BUCKET_MS + window_ms if buckets else None}


@dataclass(frozen=True)
class FilmDelta:
    """How one accepted event changes a film's statistics."""
    movie_id: int
    count: int          # +1 for a first rating, 0 for a re-rating
    total: float        # change of the rating sum


@dataclass
class UserState:
    user_id: int
    ratings: dict[int, tuple[float, int, str]] = field(default_factory=dict)  # movie -> (rating, ts, event id)

    def apply(self, event: RatingEvent) -> FilmDelta | None:
        """Folds one event into the state; None when an equal or later rating is already there."""
        current = self.ratings.get(event.movie_id)
        if not supersedes(current, event.ts, event.event_id):
            return None
        self.ratings[event.movie_id] = (event.rating, event.ts, event.event_id)
        if current is None:
            return FilmDelta(event.movie_id, 1, event.rating)
        return FilmDelta(event.movie_id, 0, event.rating - current[0])

    def vector(self, fold: FoldIn, item_index: dict[int, int]) -> np.ndarray:
        """x_u solved from every current rating of a film the model knows (and when it was given)."""
        return solve_user(fold, item_index, ((m, r, ts) for m, (r, ts, _) in self.ratings.items()))

    def document(self, vector=None, model_version: str = "", privacy: dict | None = None) -> dict:
        """The whole ``users`` document of this state (``search.documents.user_document``)."""
        return user_document(self.user_id, {m: r for m, (r, _, _) in self.ratings.items()},
                             max((ts for _, ts, _ in self.ratings.values()), default=None), vector, model_version,
                             privacy)

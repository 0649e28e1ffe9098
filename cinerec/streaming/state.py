"""The rules of streaming state and the rows the state step hands the driver (pure logic;
``streaming.stateful`` keeps the state in Spark, ``streaming.processor`` writes the rows out).

A user's state is their current rating of each film. A re-rating replaces the old value by the
one rule of what the latest rating is (``core.events.supersedes``), so the state after a set of
events does not depend on the order they arrive in. Each change moves the film's totals, and the
user's vector is re-solved exactly from the whole state with ``core.foldin`` (no drift).
"""

from __future__ import annotations

import json

import numpy as np

from cinerec.core.events import LIKED
from cinerec.core.foldin import FoldIn, solve_user
from cinerec.search.documents import user_document

# One current rating in an entity's state, as a numpy record: the other id (a user's film, a film's
# user), the rating, its event time and event id (a canonical UUID, or ``TRAINING_EVENT``). A user
# row hands the driver the user's ratings in this form, as the state holds them.
RATING = np.dtype([("other", "<i8"), ("rating", "<f8"), ("ts", "<i8"), ("event", "S36")])


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

# The rows the state step hands the driver (``RatingState`` -> ``RatingProcessor``), one schema,
# typed columns per kind (the others null), read by the document builders as they are:
#   rating  an accepted event: its fields, where it came from, the user's consent to analytics
#   user    a user whose ratings or choices changed: ``ratings`` (``RATING`` records; null when only
#           repeats of applied events arrived), the choices in force, repeats counted
#   film    a film whose ratings changed: its figures as its ``film_stats`` document holds them
#   dead    a dead letter: reason, detail, the DLQ value, source position, the user it names
#   stats   the state step's own figures for one group (rows, entities, state-server calls, seconds)
EVENT_SCHEMA = "event_id string, user_id long, movie_id long, rating double, ts long, source string"
SOURCE_SCHEMA = "record_ts long, source_partition long, source_offset long"
LETTER_SCHEMA = "reason string, detail string, letter string"
OUTPUT_SCHEMA = ", ".join([
    "kind string, entity long", EVENT_SCHEMA, SOURCE_SCHEMA, "analytics boolean",
    "ratings binary, personalisation boolean, erased boolean, basis string, privacy_changed boolean, "
    "duplicates long",
    "rating_count long, rating_sum double, like_count long, trending long, trending_buckets string, "
    "trending_until long",
    LETTER_SCHEMA,
    "rows long, entities long, calls long, call_seconds double, seconds double"])
OUTPUT_COLUMNS = [part.split()[0] for part in OUTPUT_SCHEMA.split(", ")]
SOURCE_COLUMNS = [part.split()[0] for part in SOURCE_SCHEMA.split(", ")]   # where an accepted event came from
STATS_COLUMNS = ["rows", "entities", "calls", "call_seconds", "seconds"]


def live_buckets(buckets: dict[int, int], now: int, window_ms: int) -> dict[int, int]:
    """The trending buckets (bucket start -> ratings) still inside the window ending ``now``."""
    return {b: n for b, n in buckets.items() if b + TRENDING_BUCKET_MS > now - window_ms}


def trend_fields(buckets: dict[int, int], window_ms: int) -> dict:
    """A film's trending fields: the count over the window, its buckets, and when the oldest
    bucket leaves the window (``trending_until``: when the count must drop even if nobody rates)."""
    return {"trending": sum(buckets.values()),
            "trending_buckets": json.dumps(sorted(buckets.items())),
            "trending_until": min(buckets) + TRENDING_BUCKET_MS + window_ms if buckets else None}


def user_vector(fold: FoldIn, item_index: dict[int, int], ratings: np.ndarray) -> np.ndarray:
    """x_u solved from a user's current ratings (``RATING`` records) of films the model knows."""
    return solve_user(fold, item_index, zip(ratings["other"].tolist(), ratings["rating"].tolist(),
                                            ratings["ts"].tolist()))


def user_state_document(user_id: int, ratings: np.ndarray, vector=None, model_version: str = "",
                        privacy: dict | None = None) -> dict:
    """The whole ``users`` document of a user's current ratings (``RATING`` records;
    ``search.documents.user_document``)."""
    return user_document(user_id, dict(zip(ratings["other"].tolist(), ratings["rating"].tolist())),
                         int(ratings["ts"].max()) if len(ratings) else None, vector, model_version, privacy)

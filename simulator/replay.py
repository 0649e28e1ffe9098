"""MovieLens replay: historical ratings as events, in event-time order.

``speed`` compresses event time: 0 sends as fast as possible, 3600 sends an hour of history
per second. Event ids are derived from (user, movie, ts), so replaying twice publishes the
same ids and the streaming job's de-duplication applies the history once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pandas as pd

from .producer import VALID, Message

REPLAY_NAMESPACE = uuid.UUID("5b0c1c0e-2f7e-4c55-9d3a-6f1c2c6b7a10")


def replay_messages(ratings: pd.DataFrame, *, speed: float = 0.0,
                    limit: int | None = None) -> tuple[Iterator[Message], int]:
    """(messages in event-time order, number of rows skipped for missing values)."""
    complete = ratings.dropna(subset=["user_id", "movie_id", "rating", "ts"])
    skipped = len(ratings) - len(complete)
    ordered = complete.sort_values("ts", kind="stable")
    if limit is not None:
        ordered = ordered.head(limit)
    return _messages(ordered, speed), skipped


def _messages(ordered: pd.DataFrame, speed: float) -> Iterator[Message]:
    first_ts = int(ordered["ts"].iloc[0]) if len(ordered) else 0
    for user, movie, rating, ts in ordered[["user_id", "movie_id", "rating", "ts"]].itertuples(
            index=False, name=None):
        user, movie, ts = int(user), int(movie), int(ts)
        event = {"event_id": str(uuid.uuid5(REPLAY_NAMESPACE, f"{user}:{movie}:{ts}")),
                 "user_id": user, "movie_id": movie, "rating": float(rating), "ts": ts,
                 "source": "replay"}
        due = (ts - first_ts) / 1000 / speed if speed else 0.0
        yield Message(str(user).encode(), json.dumps(event, separators=(",", ":")).encode(),
                      VALID, due)

"""MovieLens replay: historical ratings as events, in event-time order.

``speed`` compresses event time: 0 sends as fast as possible, 3600 sends an hour of history
per second; ``rate`` instead sends a steady number of events per second (what a person can
watch). Event ids are derived from (user, movie, ts), so replaying twice publishes the same
ids and the streaming job's de-duplication applies the history once.

``time_cut`` splits a history at a fraction of its ratings by time: the demo trains on the
part before and replays the part after, so the stream brings ratings the model has not seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd

from cinerec.core.events import RatingEvent

from .producer import VALID, Message

REPLAY_NAMESPACE = uuid.UUID("5b0c1c0e-2f7e-4c55-9d3a-6f1c2c6b7a10")


def time_cut(ratings: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the first ``fraction`` of the ratings by time, the rest), rows with missing values dropped
    from neither: the loaders and the integrity check deal with those."""
    if not 0 < fraction < 1:
        raise ValueError(f"the time cut must be between 0 and 1, got {fraction}")
    ordered = ratings.sort_values("ts", kind="stable", na_position="first")
    cut = int(round(len(ordered) * fraction))
    return ordered.iloc[:cut].sort_index(), ordered.iloc[cut:].sort_index()


def replay_messages(ratings: pd.DataFrame, *, speed: float = 0.0, rate: float = 0.0, after: float = 0.0,
                    limit: int | None = None) -> tuple[Iterator[Message], int]:
    """(messages in event-time order, number of rows skipped for missing values).
    ``after``: replay only the ratings after that fraction of the history (``time_cut``)."""
    if after:
        ratings = time_cut(ratings, after)[1]
    complete = ratings.dropna(subset=["user_id", "movie_id", "rating", "ts"])
    skipped = len(ratings) - len(complete)
    ordered = complete.sort_values("ts", kind="stable")
    if limit is not None:
        ordered = ordered.head(limit)
    return _messages(ordered, speed, rate), skipped


def _messages(ordered: pd.DataFrame, speed: float, rate: float) -> Iterator[Message]:
    first_ts = int(ordered["ts"].iloc[0]) if len(ordered) else 0
    for i, (user, movie, rating, ts) in enumerate(ordered[["user_id", "movie_id", "rating", "ts"]].itertuples(
            index=False, name=None)):
        user, movie, ts = int(user), int(movie), int(ts)
        event = RatingEvent(str(uuid.uuid5(REPLAY_NAMESPACE, f"{user}:{movie}:{ts}")), user, movie, float(rating),
                            ts, "replay")
        due = i / rate if rate else (ts - first_ts) / 1000 / speed if speed else 0.0
        yield Message(event.key, event.to_json(), VALID, due)

"""Keyed state of the streaming job in Spark's state store (``transformWithStateInPandas``).

    Kafka records ─keyed_rows─▶ one row per (key, event):  u:<user> and m:<movie> for a valid
                                event, "dead" for a dead letter
    groupBy(key).transformWithStateInPandas(RatingState) ─▶ rows (kind, key, payload JSON):
        user    the user's current ratings, when one changed   -> fold-in + users document
        film    count, rating sum, trending count              -> films document
        rating  every valid event                               -> ratings document
        dead    every dead letter                               -> ratings.dlq

A key's state is its current ratings (a user's per film, a film's per user): a re-rating
replaces the old value, the later (event time, event id) wins, so arrival order does not matter
and a re-sent event changes nothing. Films also keep (count, sum) and trending buckets. The
state is versioned with the query's checkpoint (RocksDB provider), so when Spark re-runs a batch
after a crash it starts from the state before that batch and emits the same rows again.

Trending: ratings per ``TRENDING_BUCKET_MS`` bucket of event time. When a film gets a rating,
the event counts if its event time is not behind the watermark (processing time −
``lateness_ms``), buckets that left the window (``trending_window_ms``) are dropped, and the
film's trend is the sum of the rest. A film nobody rates keeps its last trend until its next
rating: processing-time timers would decay it, but with them Spark runs a micro-batch on every
trigger even without data, and ``availableNow`` never finishes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pandas as pd
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

from .state import film_totals, supersedes
from .validate import Record, validate_records

TRENDING_BUCKET_MS = 60_000
INPUT_SCHEMA = ("key string, kind string, event_id string, user_id long, movie_id long, rating double, "
                "ts long, source string, record_ts long, payload string")
OUTPUT_SCHEMA = "kind string, key string, payload string"
INITIAL_SCHEMA = "key string, other long, rating double, ts long, event_id string"
EVENT_COLUMNS = ["event_id", "user_id", "movie_id", "rating", "ts", "source"]


INPUT_COLUMNS = [part.split()[0] for part in INPUT_SCHEMA.split(", ")]


def keyed_rows(catalog: set[int]):
    """``mapInPandas`` function: Kafka rows -> keyed input rows of ``RatingState``."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            stamps = {(int(p), int(o)): int(t.value // 1_000_000) if not pd.isna(t) else 0
                      for p, o, t in zip(frame["partition"], frame["offset"], frame["timestamp"])}
            records = [Record(bytes(v) if v is not None else b"", int(p), int(o),
                              bytes(k) if k is not None else None)
                       for k, v, p, o in zip(frame["key"], frame["value"], frame["partition"], frame["offset"])]
            checked = validate_records(records, known_movie=catalog.__contains__, drop_repeats=False)
            rows = []
            for event in checked.accepted:
                source = checked.sources[event.event_id]
                stamp = stamps[(source.partition, source.offset)]
                values = [event.event_id, event.user_id, event.movie_id, event.rating, event.ts, event.source]
                rows.append([f"u:{event.user_id}", "event", *values, stamp, None])
                rows.append([f"m:{event.movie_id}", "event", *values, stamp, None])
            for letter in checked.dead:
                rows.append(["dead", "dead", None, None, None, None, None, None,
                             stamps[(letter.record.partition, letter.record.offset)],
                             json.dumps({"key": f"{letter.record.partition}:{letter.record.offset}",
                                         "headers": [[k, v.decode()] for k, v in letter.headers()],
                                         "value": letter.to_json().decode()})])
            yield pd.DataFrame(rows, columns=INPUT_COLUMNS)

    return run


def initial_rows(ratings: pd.DataFrame) -> pd.DataFrame:
    """The ratings a model was trained on as initial state: each under its user and its film."""
    base = ratings[["user_id", "movie_id", "rating", "ts"]]
    users = pd.DataFrame({"key": "u:" + base["user_id"].astype(str), "other": base["movie_id"].astype("int64")})
    films = pd.DataFrame({"key": "m:" + base["movie_id"].astype(str), "other": base["user_id"].astype("int64")})
    out = pd.concat([users, films], ignore_index=True)
    out["rating"] = pd.concat([base["rating"], base["rating"]], ignore_index=True).astype(float)
    out["ts"] = pd.concat([base["ts"], base["ts"]], ignore_index=True).astype("int64")
    out["event_id"] = "train"
    return out


class RatingState(StatefulProcessor):
    def __init__(self, trending_window_ms: int = 3_600_000, lateness_ms: int = 600_000):
        self.window_ms, self.lateness_ms = trending_window_ms, lateness_ms

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        # user key: other = movie; film key: other = user
        self.ratings = handle.getMapState("ratings", "other long", "rating double, ts long, event_id string")
        self.totals = handle.getValueState("totals", "count long, total double, likes long")  # films
        self.buckets = handle.getMapState("trending", "bucket long", "n long")            # films

    # -- initial state: the training ratings ------------------------------------------------

    def handleInitialState(self, key, initialState: pd.DataFrame, timerValues) -> None:
        totals = self._totals()
        for other, rating, ts, event_id in initialState[["other", "rating", "ts", "event_id"]].itertuples(
                index=False, name=None):
            current = self.ratings.getValue((int(other),))
            totals = film_totals(totals, current[0] if current else None, float(rating))
            self.ratings.updateValue((int(other),), (float(rating), int(ts), str(event_id)))
        if key[0].startswith("m:"):
            self.totals.update(totals)

    # -- new events --------------------------------------------------------------------------

    def handleInputRows(self, key, rows: Iterator[pd.DataFrame], timerValues) -> Iterator[pd.DataFrame]:
        key = key[0]
        frame = pd.concat(list(rows), ignore_index=True)
        if key == "dead":
            yield pd.DataFrame({"kind": "dead", "key": key, "payload": frame["payload"]})
            return
        frame = frame.sort_values(["ts", "event_id"], kind="stable")
        is_user = key.startswith("u:")
        now = int(time.time() * 1000)
        totals = None if is_user else self._totals()
        changed, duplicates, out = False, 0, []
        for event in frame.itertuples(index=False):
            other = int(event.movie_id if is_user else event.user_id)
            current = self.ratings.getValue((other,))
            if is_user:
                out.append(("rating", key, json.dumps({**{c: _plain(getattr(event, c)) for c in EVENT_COLUMNS},
                                                       "record_ts": int(event.record_ts)})))
            if not supersedes(current, int(event.ts), event.event_id):
                duplicates += (current[1], current[2]) == (int(event.ts), event.event_id)
                continue
            self.ratings.updateValue((other,), (float(event.rating), int(event.ts), event.event_id))
            changed = True
            if not is_user:
                totals = film_totals(totals, current[0] if current else None, float(event.rating))
                self._count_trending(int(event.ts), now)
        if is_user and changed:
            current = [[int(m), float(r), int(ts)] for (m,), (r, ts, _) in self.ratings.iterator()]
            out.append(("user", key, json.dumps({"ratings": current, "duplicates": duplicates})))
        elif is_user and duplicates:
            out.append(("user", key, json.dumps({"duplicates": duplicates})))
        if not is_user and changed:
            self.totals.update(totals)
            out.append(self._film_row(key, now))
        if out:
            yield pd.DataFrame(out, columns=["kind", "key", "payload"])

    def close(self) -> None:
        pass

    # -- helpers -----------------------------------------------------------------------------

    def _totals(self) -> tuple[int, float, int]:
        value = self.totals.get()
        return (int(value[0]), float(value[1]), int(value[2])) if value else (0, 0.0, 0)

    def _film_row(self, key: str, now: int) -> tuple[str, str, str]:
        count, total, likes = self._totals()
        return ("film", key, json.dumps({"count": count, "total": total, "likes": likes,
                                         "trending": self._trending(now)}))

    def _count_trending(self, ts: int, now: int) -> None:
        """Counts an event in its event-time bucket unless it is behind the watermark."""
        if not now - self.lateness_ms <= ts <= now + self.lateness_ms:
            return
        bucket = ts - ts % TRENDING_BUCKET_MS
        current = self.buckets.getValue((bucket,))
        self.buckets.updateValue((bucket,), ((current[0] if current else 0) + 1,))

    def _trending(self, now: int) -> int:
        """Ratings in the window ending now; drops buckets that left it."""
        trend = 0
        for (bucket,), (n,) in list(self.buckets.iterator()):
            if bucket + TRENDING_BUCKET_MS <= now - self.window_ms:
                self.buckets.removeKey((bucket,))
            else:
                trend += int(n)
        return trend


def _plain(value):
    """numpy scalars -> JSON-ready Python values."""
    return value.item() if hasattr(value, "item") else value

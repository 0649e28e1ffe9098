"""Keyed state of the streaming job in Spark's state store (``transformWithStateInPandas``).

    Kafka records ─keyed_rows─▶ per valid event two rows, under its user's bucket "u:<user % B>"
                                and its film's bucket "m:<movie % B>"; per privacy event (topic
                                ``kafka.privacy_topic``) a row under the user's bucket, and for an
                                erasure one under every film bucket; dead letters under "dead"
    groupBy(key).transformWithStateInPandas(RatingState) ─▶ typed rows (``state.OUTPUT_SCHEMA``):
        user    <user id>   the user's current ratings (RATING records)   -> fold-in + users document
                            and choices, when either changed                 (deleted when erased)
        film    <movie id>  count, rating sum, likes, trending fields     -> film_stats document
        rating  <user id>   every valid event, in the event's columns     -> ratings document (analytics)
        dead                every dead letter (``validate.Letter``)       -> ratings.dlq

Privacy (``core.privacy``): a user's state keeps their choices; privacy rows of a batch are applied
before its ratings. An erasure empties the user's state and leaves a tombstone, and every film
bucket removes the user's ratings from its films (their statistics change like for any rating)
and remembers the user id: later events of an erased user are dropped in both places. Applied
with the checkpoint like any event, so exactly once across restarts.

An entity's state (``EntityState``) is its current ratings (a user's per film, a film's per
user): a re-rating replaces the old value by ``core.events.supersedes`` (the later event time, on
equal times the higher rating), so arrival order does not matter and a re-sent event changes
nothing (it is counted as a duplicate). Films also keep (count, sum, likes)
and trending buckets. Entities are grouped into B hash buckets per kind
(``streaming.state_buckets``) because every group costs the Python worker a round trip to the
JVM: thousands of users per micro-batch would cost seconds, B buckets cost milliseconds. Within
a bucket each entity is its own entry of a map state, so a micro-batch reads and writes only the
entities it touches. The state is versioned with the query's checkpoint (RocksDB provider), so
when Spark re-runs a batch after a crash it starts from the state before that batch and emits
the same rows again.

Trending: ratings per ``TRENDING_BUCKET_MS`` bucket of event time. When a film gets a rating,
the event counts if its event time is not behind the watermark (processing time −
``lateness_ms``), buckets that left the window (``trending_window_ms``) are dropped, and the
film row carries the rest. Processing-time timers could drop buckets of a film nobody rates,
but with them Spark runs a micro-batch on every trigger even without data and ``availableNow``
never finishes; instead the film document keeps its buckets and when the oldest leaves the
window, and the driver lowers such films on a clock (``RatingProcessor.decay_trending``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

from cinerec.core.events import FIELDS, InvalidEvent, RatingEvent, supersedes
from cinerec.core.privacy import effective, parse_privacy_event, supersedes_choice

from .state import (
    LETTER_SCHEMA,
    OUTPUT_COLUMNS,
    RATING,
    SOURCE_COLUMNS,
    STATS_COLUMNS,
    TRENDING_BUCKET_MS,
    film_totals,
    film_totals_without,
    live_buckets,
    trend_fields,
)
from .validate import DeadLetter, Letter, Record, processing_error, validate_records

STATE_LAYOUT = 4   # bumped when the state's shape, its rules or the rows it hands on change: a new checkpoint
INPUT_SCHEMA = ("key string, kind string, event_id string, user_id long, movie_id long, rating double, "
                "ts long, source string, record_ts long, source_partition long, source_offset long, payload string, "
                + LETTER_SCHEMA)   # payload: a privacy event; the letter's columns: a dead letter
TRAINING_EVENT = "train"   # event id of the training ratings that seed a new checkpoint
INITIAL_SCHEMA = "key string, entity long, other long, rating double, ts long, event_id string"


INPUT_COLUMNS = [part.split()[0] for part in INPUT_SCHEMA.split(", ")]
INPUT_DTYPES = {"user_id": "Int64", "movie_id": "Int64", "rating": "float64", "ts": "Int64", "record_ts": "int64",
                "source_partition": "Int64", "source_offset": "Int64"}
OUTPUT_DTYPES = {**INPUT_DTYPES, "entity": "Int64", "record_ts": "Int64", "analytics": "boolean",
                 "personalisation": "boolean", "erased": "boolean", "privacy_changed": "boolean", "duplicates": "Int64",
                 "rating_count": "Int64", "rating_sum": "float64", "like_count": "Int64", "trending": "Int64",
                 "trending_until": "Int64", "rows": "Int64", "entities": "Int64", "calls": "Int64",
                 "call_seconds": "float64", "seconds": "float64"}
LETTER_COLUMNS = list(Letter._fields)    # a dead row's columns, in the input and the output alike


def keyed_rows(catalog: set[int], buckets: int, privacy_topic: str | None = None):
    """``mapInPandas`` function: Kafka rows -> keyed input rows of ``RatingState``.

    An event carries its source partition and offset (for a dead letter a later step may need);
    a dead letter's ``payload`` is what the driver publishes; a privacy row's is the privacy event.
    The frame is typed here, row by row if the whole fails, so a value Arrow cannot carry is a
    dead letter, not a failed batch."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            topics = frame["topic"] if "topic" in frame else [None] * len(frame)
            records: list[Record] = []
            privacy: list[Record] = []
            for k, v, p, o, t, topic in zip(frame["key"], frame["value"], frame["partition"],
                                             frame["offset"], frame["timestamp"], topics):
                record = Record(bytes(v) if v is not None else b"", int(p), int(o),
                                bytes(k) if k is not None else None, _millis(t))
                (privacy if privacy_topic and topic == privacy_topic else records).append(record)
            checked = validate_records(records, known_movie=catalog.__contains__)
            rows = privacy_rows(privacy, buckets)
            for event, source in checked.accepted:
                values = [event.event_id, event.user_id, event.movie_id, event.rating, event.ts, event.source,
                          source.timestamp_ms or 0, source.partition, source.offset, None, None, None, None]
                rows.append((source, [f"u:{event.user_id % buckets}", "event", *values]))
                rows.append((source, [f"m:{event.movie_id % buckets}", "event", *values]))
            yield _typed([*rows, *((letter.record, dead_row(letter)) for letter in checked.dead)])

    return run


def privacy_rows(records: list[Record], buckets: int) -> list[tuple[Record, list]]:
    """A privacy event's row under its user's bucket and, for an erasure, under every film bucket."""
    rows = []
    for record in records:
        try:
            event = parse_privacy_event(record.value)
        except InvalidEvent as err:
            rows.append((record, dead_row(DeadLetter(err.reason, err.detail, record))))
            continue
        values = [None, event.user_id, None, None, event.ts, None, record.timestamp_ms or 0, None, None,
                  event.to_json().decode(), None, None, None]
        rows.append((record, [f"u:{event.user_id % buckets}", "privacy", *values]))
        rows += [(record, [f"m:{b}", "erase", *values]) for b in range(buckets) if event.erased]
    return rows


def dead_row(letter: DeadLetter) -> list:
    """The input row of a dead letter, in ``validate.Letter``'s columns (what the driver publishes)."""
    typed = letter.letter()
    return ["dead", "dead", None, typed.user_id, None, None, None, None, typed.record_ts or 0,
            typed.source_partition, typed.source_offset, None, typed.reason, typed.detail, typed.letter]


def _typed(rows: list[tuple[Record, list]]) -> pd.DataFrame:
    """Rows -> a frame of INPUT_SCHEMA's types; a row that cannot be typed becomes a dead letter."""
    try:
        return pd.DataFrame([row for _, row in rows], columns=INPUT_COLUMNS).astype(INPUT_DTYPES)
    except Exception:  # noqa: BLE001 - find the rows at fault one by one
        typed = []
        for record, row in rows:
            try:
                typed.append(pd.DataFrame([row], columns=INPUT_COLUMNS).astype(INPUT_DTYPES))
            except Exception as err:  # noqa: BLE001 - dead-lettered with the error
                typed.append(pd.DataFrame([dead_row(processing_error(err, record))],
                                          columns=INPUT_COLUMNS).astype(INPUT_DTYPES))
        return pd.concat(typed, ignore_index=True) if typed else _typed([])


def _millis(stamp) -> int | None:
    return None if stamp is None or pd.isna(stamp) else int(pd.Timestamp(stamp).value // 1_000_000)


def initial_rows(ratings: pd.DataFrame, buckets: int) -> pd.DataFrame:
    """The ratings a model was trained on as initial state: each under its user and its film."""
    base = ratings[["user_id", "movie_id", "rating", "ts"]].astype(
        {"user_id": "int64", "movie_id": "int64", "rating": float, "ts": "int64"})
    users = pd.DataFrame({"key": "u:" + (base["user_id"] % buckets).astype(str), "entity": base["user_id"],
                          "other": base["movie_id"], "rating": base["rating"], "ts": base["ts"]})
    films = pd.DataFrame({"key": "m:" + (base["movie_id"] % buckets).astype(str), "entity": base["movie_id"],
                          "other": base["user_id"], "rating": base["rating"], "ts": base["ts"]})
    return pd.concat([users, films], ignore_index=True).assign(event_id=TRAINING_EVENT)


# The map state's value per entity, typed: the ratings as RATING records sorted by ``other`` (bytes:
# read and written without parsing), a film's totals, and the rare small parts as JSON.
STATE_SCHEMA = ("ratings binary, count long, total double, likes long, buckets string, privacy string")


class EntityState:
    """One user's or film's state: current ratings by the other id (a user's films, a film's
    users), and for films (count, rating sum, likes) and trending buckets. Ratings are a sorted
    numpy record array, found by binary search: loading or saving an entity costs a copy of its
    bytes, not the parsing of every rating it holds (which grew with a popular film's audience)."""

    def __init__(self, value: tuple | None = None):
        ratings, count, total, likes, buckets, privacy = value or (b"", 0, 0.0, 0, None, None)
        self.rows = np.frombuffer(ratings or b"", dtype=RATING).copy()
        self.totals: tuple[int, float, int] = (int(count), float(total), int(likes))
        self.buckets: dict[int, int] = {int(k): v for k, v in json.loads(buckets).items()} if buckets else {}
        self.privacy: dict | None = json.loads(privacy) if privacy else None  # a user's latest choices, with "ts"

    def value(self) -> tuple:
        """The map state's value (``STATE_SCHEMA``)."""
        return (self.rows.tobytes(), *self.totals, json.dumps(self.buckets) if self.buckets else None,
                json.dumps(self.privacy) if self.privacy else None)

    @property
    def ratings(self) -> dict[int, tuple[float, int, str]]:
        """{other id: (rating, ts, event id)}: every current rating, as Python values."""
        return {int(o): (float(r), int(ts), e.decode()) for o, r, ts, e in self.rows.tolist()}

    def get(self, other: int) -> tuple[float, int, str] | None:
        return self._at(self._find(other))

    def _at(self, at: int | None) -> tuple[float, int, str] | None:
        if at is None:
            return None
        other, rating, ts, event = self.rows[at].tolist()
        return rating, ts, event.decode()

    @property
    def erased(self) -> bool:
        return bool(self.privacy and self.privacy["erased"])

    def clear(self) -> None:
        """Forgets every rating (an erased user)."""
        self.rows, self.totals = self.rows[:0], (0, 0.0, 0)

    def remove(self, other: int) -> bool:
        """Removes the rating of ``other`` (an erased user's, from a film); True if there was one."""
        at = self._find(other)
        if at is None:
            return False
        self.totals = film_totals_without(self.totals, float(self.rows[at]["rating"]))
        self.rows = np.delete(self.rows, at)
        return True

    def apply(self, other: int, rating: float, ts: int, event_id: str) -> tuple | None | bool:
        """Folds in one rating; returns False when it changes nothing, else the replaced value."""
        at = self._find(other)
        current = self._at(at)
        if not supersedes(current, rating, ts):
            return False
        record = (other, rating, ts, event_id.encode())
        if at is None:
            self.rows = np.insert(self.rows, int(np.searchsorted(self.rows["other"], other)),
                                  np.array([record], dtype=RATING))
        else:
            self.rows[at] = record
        self.totals = film_totals(self.totals, current[0] if current else None, rating)
        return current

    def _find(self, other: int) -> int | None:
        at = int(np.searchsorted(self.rows["other"], other))
        return at if at < len(self.rows) and self.rows["other"][at] == other else None

    def count_trending(self, ts: int, now: int, lateness_ms: int) -> None:
        """Counts an event in its event-time bucket unless it is behind the watermark."""
        if now - lateness_ms <= ts <= now + lateness_ms:
            bucket = ts - ts % TRENDING_BUCKET_MS
            self.buckets[bucket] = self.buckets.get(bucket, 0) + 1

    def drop_old_buckets(self, now: int, window_ms: int) -> dict[int, int]:
        """Drops the trending buckets that left the window ending now; returns the rest."""
        self.buckets = live_buckets(self.buckets, now, window_ms)
        return self.buckets


class Entities:
    """The entities of one group key, one entry each in Spark's map state (entity id -> its
    ``EntityState``, typed), read when a batch first touches them and written back when changed:
    a micro-batch costs what it touches, not what the bucket holds."""

    def __init__(self, state):
        self.state = state
        self.loaded: dict[int, EntityState] = {}
        self.calls, self.call_seconds = 0, 0.0      # round trips to Spark's state server and their time

    def __getitem__(self, entity: int) -> EntityState:
        if entity not in self.loaded:
            started = time.perf_counter()
            value = self.state.getValue((entity,))
            self.calls, self.call_seconds = self.calls + 1, self.call_seconds + time.perf_counter() - started
            self.loaded[entity] = EntityState(value)
        return self.loaded[entity]

    def save(self, entities) -> None:
        values = [((entity,), self.loaded[entity].value()) for entity in entities]
        started = time.perf_counter()
        for key, value in values:
            self.state.updateValue(key, value)
        self.calls, self.call_seconds = self.calls + len(values), self.call_seconds + time.perf_counter() - started


class RatingState(StatefulProcessor):
    def __init__(self, trending_window_ms: int = 3_600_000, lateness_ms: int = 600_000,
                 first_person_id: int = 2**31 - 1):
        self.window_ms, self.lateness_ms, self.first_person_id = trending_window_ms, lateness_ms, first_person_id

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.state = handle.getMapState("entities", "entity long", STATE_SCHEMA)
        self.erased_state = handle.getValueState("erased", "users string")   # film buckets: erased user ids

    # -- initial state: the training ratings ------------------------------------------------

    def handleInitialState(self, key, initialState: pd.DataFrame, timerValues) -> None:
        bucket = Entities(self.state)
        for entity, other, rating, ts, event_id in initialState[
                ["entity", "other", "rating", "ts", "event_id"]].itertuples(index=False, name=None):
            bucket[int(entity)].apply(int(other), float(rating), int(ts), str(event_id))
        bucket.save(bucket.loaded)

    # -- new events --------------------------------------------------------------------------

    def handleInputRows(self, key, rows: Iterator[pd.DataFrame], timerValues) -> Iterator[pd.DataFrame]:
        started = time.perf_counter()
        key = key[0]
        frame = pd.concat(list(rows), ignore_index=True)
        if key == "dead":
            yield _output([{"kind": "dead", **letter} for letter in frame[LETTER_COLUMNS].to_dict("records")])
            return
        out, bucket = self._handle(key, frame)
        out.append(dict(zip(["kind", *STATS_COLUMNS], ["stats", len(frame), len(bucket.loaded), bucket.calls,
                                                       bucket.call_seconds, time.perf_counter() - started])))
        yield _output(out)

    def _handle(self, key: str, frame: pd.DataFrame) -> tuple[list[dict], Entities]:
        """The output rows of one group's input rows, and the group's entities."""
        is_user = key.startswith("u:")
        now = int(time.time() * 1000)
        bucket = Entities(self.state)
        changed: set[int] = set()
        duplicates: dict[int, int] = {}
        out: list[dict] = []
        choices_changed = self._apply_privacy(bucket, frame[frame["kind"] != "event"], is_user, changed)
        erased = set() if is_user else self._erased()
        events = frame[frame["kind"] == "event"]
        for event in events.sort_values(["ts", "event_id"], kind="stable").itertuples(index=False):
            if (bucket[int(event.user_id)].erased if is_user else int(event.user_id) in erased):
                continue                                     # an erased user's event is dropped
            try:
                entity, other = (int(event.user_id), int(event.movie_id)) if is_user else (
                    int(event.movie_id), int(event.user_id))
                state = bucket[entity]
                rating_row = _rating_row(event, effective(entity, state.privacy, self.first_person_id)["analytics"]
                                         ) if is_user else None
                if state.apply(other, float(event.rating), int(event.ts), event.event_id) is False:
                    current = state.get(other)
                    assert current is not None          # an event that changes nothing met a rating
                    duplicates[entity] = duplicates.get(entity, 0) + ((current[1], current[2])
                                                                      == (int(event.ts), event.event_id))
                else:
                    changed.add(entity)
                    if not is_user:
                        state.count_trending(int(event.ts), now, self.lateness_ms)
            except Exception as err:  # noqa: BLE001 - this event is dead-lettered, the others go on
                out.append(_letter_row(processing_error(err, _source_record(event))))
                continue
            if rating_row is not None:
                out.append(rating_row)
        for entity in sorted(changed | {e for e, n in duplicates.items() if n}):
            state = bucket[entity]
            if is_user:
                choices = effective(entity, state.privacy, self.first_person_id)
                out.append({"kind": "user", "entity": entity,
                            "ratings": state.rows.tobytes() if entity in changed else None,
                            "personalisation": choices["personalisation"], "analytics": choices["analytics"],
                            "erased": choices["erased"], "basis": choices["basis"],
                            "privacy_changed": entity in choices_changed, "duplicates": duplicates.get(entity, 0)})
            elif entity in changed:
                count, total, likes = state.totals
                out.append({"kind": "film", "entity": entity, "rating_count": count, "rating_sum": total,
                            "like_count": likes,
                            **trend_fields(state.drop_old_buckets(now, self.window_ms), self.window_ms)})
        bucket.save(changed)
        return out, bucket

    def _apply_privacy(self, bucket: Entities, rows: pd.DataFrame, is_user: bool, changed: set[int]) -> set[int]:
        """Applies a batch's privacy rows; returns the users whose choices changed. A user bucket
        records the choices (an erasure empties the user's ratings); a film bucket removes an
        erased user's ratings from every film it holds and remembers the user."""
        if rows.empty:
            return set()
        events = [parse_privacy_event(p.encode()) for p in rows.sort_values("ts", kind="stable")["payload"]]
        if is_user:
            touched = set()
            for event in events:
                state = bucket[event.user_id]
                if supersedes_choice(state.privacy, event):
                    state.privacy = {**event.choices(), "ts": event.ts}
                    if event.erased:
                        state.clear()
                    touched.add(event.user_id)
            changed.update(touched)
            return touched
        gone = {e.user_id for e in events if e.erased} - self._erased()
        if gone:
            for entity in [int(k[0]) for k in self.state.keys()]:
                if any([bucket[entity].remove(user) for user in gone]):
                    changed.add(entity)
            self.erased_state.update((json.dumps(sorted(self._erased() | gone)),))
        return set()

    def _erased(self) -> set[int]:
        value = self.erased_state.get() if self.erased_state.exists() else None
        return set(json.loads(value[0])) if value else set()

    def close(self) -> None:
        pass


def _rating_row(event, analytics: bool) -> dict:
    """The output row of an accepted ``event`` (its input row): its fields, source and ``analytics``."""
    return {"kind": "rating", "entity": event.user_id, **{c: getattr(event, c) for c in (*FIELDS, *SOURCE_COLUMNS)},
            "analytics": analytics}


def _letter_row(letter: DeadLetter) -> dict:
    return {"kind": "dead", **letter.letter()._asdict()}


def _output(rows: list[dict]) -> pd.DataFrame:
    """Output rows (``state.OUTPUT_COLUMNS``; a row names the columns of its kind) as a typed
    frame, built column by column (a third of the time of typing a frame of Python objects
    afterwards, which cost ~5 ms per group)."""
    return pd.DataFrame({c: pd.array([row.get(c) for row in rows], dtype=OUTPUT_DTYPES.get(c, object))
                         for c in OUTPUT_COLUMNS})


def _source_record(event) -> Record:
    """The Kafka record an accepted event came from, rebuilt from its input row."""
    values = {c: _plain(getattr(event, c)) for c in FIELDS}
    return Record(RatingEvent(**values).to_json(), int(event.source_partition), int(event.source_offset),
                  str(values["user_id"]).encode(), int(event.record_ts))


def _plain(value):
    """numpy scalars -> JSON-ready Python values."""
    return value.item() if hasattr(value, "item") else value


def checkpoint_dir(data_dir: str | Path) -> Path:
    """The query checkpoint (offsets + state) under the data directory, one per state layout."""
    return Path(data_dir) / "streaming" / f"checkpoint-v{STATE_LAYOUT}"


def has_state(checkpoint: str | Path) -> bool:
    """True once a micro-batch of the query at ``checkpoint`` committed (its state exists)."""
    return any((Path(checkpoint) / "commits").glob("[0-9]*"))


def stored_users(spark, checkpoint, first_person_id: int = 2**31 - 1) -> Iterator[tuple[int, np.ndarray, dict]]:
    """Every user's current ratings (``state.RATING`` records) and privacy choices as of the
    checkpoint's last committed batch (Spark's state data source); nothing before the first
    commit; erased users left out."""
    for user, state in _stored(spark, checkpoint, "u"):
        if not state.erased:
            yield user, state.rows, effective(user, state.privacy, first_person_id)


def streamed_ratings(spark, checkpoint) -> pd.DataFrame:
    """The current ratings the job took from Kafka (not the training ratings that seeded its
    state): user_id, movie_id, rating, ts, as of the last committed batch."""
    rows = [(user, movie, rating, ts) for user, state in _stored(spark, checkpoint, "u")
            for movie, (rating, ts, event_id) in state.ratings.items() if event_id != TRAINING_EVENT]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"]).astype(
        {"user_id": "int64", "movie_id": "int64", "rating": float, "ts": "int64"})


def held_in_state(spark, checkpoint, user_id: int) -> tuple[int, int]:
    """(ratings under the user, films holding a rating of theirs) in the checkpoint's state."""
    own = sum(len(state.ratings) for user, state in _stored(spark, checkpoint, "u") if user == user_id)
    films = sum(state.get(user_id) is not None for _, state in _stored(spark, checkpoint, "m"))
    return own, films


def stored_trending(spark, checkpoint, window_ms: int) -> dict[int, dict]:
    """The trending fields of every film with trending buckets in the checkpoint's state, as of now."""
    now = int(time.time() * 1000)
    return {film: trend_fields(live_buckets(state.buckets, now, window_ms), window_ms)
            for film, state in _stored(spark, checkpoint, "m") if state.buckets}


def _stored(spark, checkpoint, kind: str) -> Iterator[tuple[int, EntityState]]:
    """(entity id, state) of every user ("u") or film ("m") in the checkpoint's state."""
    if not has_state(checkpoint):
        return
    spark.streams.active  # noqa: B018 - creates the state store coordinator the reader reports to
    frame = (spark.read.format("statestore").option("path", str(checkpoint)).option("stateVarName", "entities")
             .load().where(f"key.key LIKE '{kind}:%'").select("user_map_key.entity", "user_map_value.*"))
    for row in frame.toLocalIterator():
        yield int(row.entity), EntityState(tuple(row)[1:])

"""The first step of every micro-batch: Kafka records -> accepted events and dead letters.

    ok path:    bytes ─parse_event─▶ RatingEvent (of a known film, under its user's key)
    error path: bytes ─▶ DeadLetter(reason, detail, original bytes, source partition/offset)
Nothing is dropped silently: every input record ends on exactly one of the two paths (a repeated
``event_id`` is accepted: the keyed state applies it once and counts the repeat). A record whose checking
raises (a bug or an input nobody foresaw) is a dead letter with reason ``processing_error`` and the
exception's message: one record never stops the job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from cinerec.core.events import MAX_ID, InvalidEvent, RatingEvent, parse_event


@dataclass(frozen=True)
class Record:
    """What the stream gives for one Kafka message."""
    value: bytes
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None     # the broker's record timestamp: when the event was received


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    detail: str
    record: Record

    def letter(self) -> Letter:
        record = self.record
        return Letter(self.reason, self.detail, self.to_json().decode(), named_user(record.value), record.timestamp_ms,
                      record.partition, record.offset)

    def to_json(self) -> bytes:
        """A self-describing DLQ value; the original bytes stay readable as latin-1 text."""
        return json.dumps({"reason": self.reason, "detail": self.detail,
                           "partition": self.record.partition, "offset": self.record.offset,
                           "ts": self.record.timestamp_ms, "original": self.record.value.decode("latin-1")}).encode()


class Letter(NamedTuple):
    """A dead letter as the job publishes and indexes it (the state step's ``dead`` rows carry
    these columns): the DLQ value, the user its original names (for an erasure), its source."""
    reason: str
    detail: str
    letter: str                 # the DLQ value (``DeadLetter.to_json``)
    user_id: int | None
    record_ts: int | None
    source_partition: int
    source_offset: int

    @property
    def key(self) -> str:
        """The DLQ key: the source partition:offset."""
        return f"{self.source_partition}:{self.source_offset}"

    def headers(self) -> list[tuple[str, bytes]]:
        return [("reason", self.reason.encode()), ("detail", self.detail[:500].encode()),
                ("source.partition", str(self.source_partition).encode()),
                ("source.offset", str(self.source_offset).encode())]


def named_user(original: bytes) -> int | None:
    """The user id an event names, when it is a valid one (a dead letter stays erasable with it)."""
    try:
        user = json.loads(original).get("user_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return user if isinstance(user, int) and not isinstance(user, bool) and 1 <= user <= MAX_ID else None


def processing_error(err: BaseException, record: Record) -> DeadLetter:
    """The dead letter of a record that made a step of the job raise."""
    return DeadLetter("processing_error", f"{type(err).__name__}: {err}"[:500], record)


@dataclass
class Validated:
    accepted: list[tuple[RatingEvent, Record]] = field(default_factory=list)   # with the record it came from
    dead: list[DeadLetter] = field(default_factory=list)


def validate_records(records: Iterable[Record], *, known_movie: Callable[[int], bool]) -> Validated:
    """Splits records (in partition/offset order) into accepted events and dead letters.
    ``known_movie``: whether a movie id is in the catalog (unknown films are dead letters)."""
    out = Validated()
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        try:
            event = parse_event(record.value or b"", record.timestamp_ms)
            if record.key is not None and record.key != event.key:
                raise InvalidEvent("wrong_key", f"key {record.key[:40]!r} is not user {event.user_id}")
            if not known_movie(event.movie_id):
                raise InvalidEvent("unknown_movie", f"movie {event.movie_id} is not in the catalog")
        except InvalidEvent as err:
            out.dead.append(DeadLetter(err.reason, err.detail, record))
            continue
        except Exception as err:  # noqa: BLE001 - the record is dead-lettered with the error, the job goes on
            out.dead.append(processing_error(err, record))
            continue
        out.accepted.append((event, record))
    return out

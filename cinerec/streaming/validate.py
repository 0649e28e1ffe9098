"""The first step of every micro-batch: Kafka records -> accepted events and dead letters.

    ok path:    bytes ─parse_event─▶ RatingEvent (known film, first time its event_id is seen)
    error path: bytes ─▶ DeadLetter(reason, detail, original bytes, source partition/offset)
Nothing is dropped silently: every input record ends on exactly one of the two paths, except a
repeated ``event_id``, which is counted as a duplicate and applied once. A record whose checking
raises (a bug or an input nobody foresaw) is a dead letter with reason ``processing_error`` and the
exception's message: one record never stops the job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cinerec.core.events import InvalidEvent, RatingEvent, parse_event


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

    def headers(self) -> list[tuple[str, bytes]]:
        return [("reason", self.reason.encode()), ("detail", self.detail[:500].encode()),
                ("source.partition", str(self.record.partition).encode()),
                ("source.offset", str(self.record.offset).encode())]

    def message(self) -> dict:
        """What goes to the DLQ: key (source partition:offset), headers and value, as text."""
        return {"key": f"{self.record.partition}:{self.record.offset}",
                "headers": [[k, v.decode()] for k, v in self.headers()], "value": self.to_json().decode()}

    def to_json(self) -> bytes:
        """A self-describing DLQ value; the original bytes stay readable as latin-1 text."""
        return json.dumps({"reason": self.reason, "detail": self.detail,
                           "partition": self.record.partition, "offset": self.record.offset,
                           "ts": self.record.timestamp_ms, "original": self.record.value.decode("latin-1")}).encode()


def processing_error(err: BaseException, record: Record) -> DeadLetter:
    """The dead letter of a record that made a step of the job raise."""
    return DeadLetter("processing_error", f"{type(err).__name__}: {err}"[:500], record)


@dataclass
class Validated:
    accepted: list[RatingEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    sources: dict[str, Record] = field(default_factory=dict)    # event id -> the record it came from


def validate_records(records: Iterable[Record], *, known_movie: Callable[[int], bool],
                     seen: Callable[[str], bool] = lambda event_id: False,
                     drop_repeats: bool = True) -> Validated:
    """Splits records (in partition/offset order) into accepted events and dead letters.

    ``known_movie``: whether a movie id is in the catalog (unknown films are dead letters).
    ``seen``: whether an event id was applied in an earlier batch.
    ``drop_repeats``: False passes a repeated event id on (the keyed state applies it once).
    """
    out = Validated()
    ids_in_batch: set[str] = set()
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
        if drop_repeats and (event.event_id in ids_in_batch or seen(event.event_id)):
            out.duplicates += 1
            continue
        ids_in_batch.add(event.event_id)
        out.accepted.append(event)
        out.sources[event.event_id] = record
    return out

"""The rating-event contract (ARCHITECTURE.md): parse, validate, serialise.

Kafka topic ``ratings``, key = user id (UTF-8), value = JSON object with
``event_id`` (UUID), ``user_id``, ``movie_id``, ``rating`` (0.5-5.0 in steps of 0.5),
``ts`` (event time, epoch ms), ``source``. Anything else is rejected with a reason. A client of
the API sends only ``CLIENT_FIELDS``; the server gives the event id, time and source
(``client_event``).

What a rating means, for every path that reads ratings (training, indexing, the stream):
- the latest rating wins (``supersedes``, ``LATEST_ORDER``): of a user's ratings of one film, the
  one with the later event time, and on equal times the higher rating. Training rows carry no
  event id, so the tie-break is one every path can apply: pandas (``core.dataset.latest_ratings``),
  Spark (``batch.preprocess``) and the streaming state agree on every input, ties included;
- a like is a rating of ``LIKED`` or more (``users.liked``, ``films.like_count``, conversions).

Every field is bounded to what each store downstream can hold, so no valid event can fail later:
ids fit Elasticsearch's ``integer`` (and so Spark's and Arrow's int64), event times lie between
1970 and 2100 and no more than ``MAX_FUTURE_MS`` ahead of when the event was received, ``source``
is a short name, the whole event fits ``MAX_EVENT_BYTES``. A JSON text that repeats a key, nests
too deeply or holds numbers no float can hold is ``bad_json``, not an exception.

Reason codes (the DLQ's ``reason`` header): ``oversized``, ``bad_json``, ``missing_field``,
``unknown_field``, ``wrong_type``, ``bad_event_id``, ``out_of_range``, ``bad_source`` here;
``wrong_key``, ``unknown_movie`` and ``processing_error`` (an event that broke a later step of the
job; the detail names the exception) are added by the streaming job.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

FIELDS = ("event_id", "user_id", "movie_id", "rating", "ts", "source")
MIN_RATING, MAX_RATING = 0.5, 5.0
MAX_EVENT_BYTES = 4096
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01: anything later is a unit mistake (seconds vs ms)
MAX_FUTURE_MS = 24 * 3_600_000  # an event time a day past its receipt is a broken clock
MAX_ID = 2**31 - 1              # Elasticsearch maps user_id and movie_id as ``integer``
CLIENT_FIELDS = ("user_id", "movie_id", "rating")   # what a client sends (POST /ratings, the web app)
LIKED = 4.0                     # a rating at or above this is a like
LATEST_ORDER = ("ts", "rating")  # ratings of one (user, film) sorted by these: the last one wins
REASONS = ("oversized", "bad_json", "missing_field", "unknown_field", "wrong_type", "bad_event_id",
           "out_of_range", "bad_source", "wrong_key", "unknown_movie", "processing_error", "bad_privacy_event")
_SOURCE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")


class InvalidEvent(ValueError):
    """An event that breaks the contract. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RatingEvent:
    event_id: str
    user_id: int
    movie_id: int
    rating: float
    ts: int
    source: str

    @property
    def key(self) -> bytes:
        """Kafka message key: the user id, so one user's events stay in order on one partition."""
        return str(self.user_id).encode()

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}

    def to_json(self) -> bytes:
        """The one encoding of a rating event (producer, replay, API, tests)."""
        return json.dumps(self.as_dict(), separators=(",", ":")).encode()


def supersedes(current: tuple | None, rating: float, ts: int) -> bool:
    """Whether a rating (``rating``, ``ts``) replaces ``current`` = (rating, ts, …) or None: the
    later event time wins, on equal times the higher rating (``LATEST_ORDER``); an equal one does not."""
    return current is None or (current[1], current[0]) < (ts, rating)


def client_event(rating: dict, *, source: str, now_ms: int) -> RatingEvent:
    """A client's rating (exactly ``CLIENT_FIELDS``) as an event; its id, time and source are the
    server's, so a client can neither back-date nor re-label events."""
    unknown = sorted(map(str, set(rating) - set(CLIENT_FIELDS)))
    if unknown:
        raise InvalidEvent("unknown_field", ", ".join(unknown)[:200])
    return validate_event({**rating, "event_id": str(uuid.uuid4()), "ts": now_ms, "source": source})


def is_valid_rating(value: float) -> bool:
    return MIN_RATING <= value <= MAX_RATING and (value * 2).is_integer()


def parse_event(raw: bytes, received_ms: int | None = None) -> RatingEvent:
    """Bytes from Kafka -> a valid ``RatingEvent``, or ``InvalidEvent`` naming what is wrong.
    ``received_ms``: when the event reached us (the Kafka record's timestamp), if known."""
    return validate_event(json_object(raw, MAX_EVENT_BYTES), received_ms)


def json_object(raw: bytes, max_bytes: int) -> dict:
    """The JSON object in ``raw``: ``oversized`` past ``max_bytes``; ``bad_json`` when it is not
    JSON, not an object, repeats a key or nests too deeply. Every event contract starts here."""
    if len(raw) > max_bytes:
        raise InvalidEvent("oversized", f"{len(raw)} bytes > {max_bytes}")
    try:
        obj = json.loads(raw, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidEvent("bad_json", str(err)[:200]) from None
    if not isinstance(obj, dict):
        raise InvalidEvent("bad_json", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def validate_event(obj: dict, received_ms: int | None = None) -> RatingEvent:
    """A decoded JSON object -> ``RatingEvent``; checks presence, types and ranges."""
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise InvalidEvent("missing_field", ", ".join(missing))
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise InvalidEvent("unknown_field", ", ".join(unknown))
    for name in ("user_id", "movie_id", "ts"):
        if not _is_int(obj[name]):
            raise InvalidEvent("wrong_type", f"{name} must be an integer, got {_short(obj[name])}")
    rating = obj["rating"]
    if not (_is_int(rating) or isinstance(rating, float)):
        raise InvalidEvent("wrong_type", f"rating must be a number, got {_short(rating)}")
    if not isinstance(obj["event_id"], str) or not isinstance(obj["source"], str):
        raise InvalidEvent("wrong_type", "event_id and source must be strings")
    try:
        event_id = str(uuid.UUID(obj["event_id"]))
    except ValueError:
        raise InvalidEvent("bad_event_id", f"not a UUID: {obj['event_id'][:64]!r}") from None
    for name in ("user_id", "movie_id"):
        if not 1 <= obj[name] <= MAX_ID:
            raise InvalidEvent("out_of_range", f"{name} must be between 1 and {MAX_ID}, got {_short(obj[name])}")
    if not (MIN_RATING <= rating <= MAX_RATING and is_valid_rating(float(rating))):
        raise InvalidEvent("out_of_range", f"rating {_short(rating)} is not one of 0.5, 1.0, ..., 5.0")
    if not 0 <= obj["ts"] <= MAX_TS_MS:
        raise InvalidEvent("out_of_range", f"ts {_short(obj['ts'])} is not epoch milliseconds")
    if received_ms is not None and obj["ts"] > received_ms + MAX_FUTURE_MS:
        raise InvalidEvent("out_of_range", f"ts {obj['ts']} is more than a day after the event was received "
                                           f"({received_ms})")
    if not _SOURCE.match(obj["source"]):
        raise InvalidEvent("bad_source", f"source {obj['source'][:40]!r} is not a short lower-case name")
    return RatingEvent(event_id, obj["user_id"], obj["movie_id"], float(rating), obj["ts"],
                       obj["source"])


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads`` hook: a key given twice makes the event ambiguous."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key appears more than once")
    return obj


def _short(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:                    # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

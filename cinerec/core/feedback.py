"""The feedback-event contract: what people were shown and what they clicked.

Kafka topic ``kafka.feedback_topic``, key = user id, value = JSON:

    impression  {"kind": "impression", "event_id", "request_id", "user_id", "variant",
                 "movie_ids": [ids in the order shown], "ts", "source"}
    click       {"kind": "click", "event_id", "request_id", "user_id", "variant", "movie_id",
                 "rank" (1-based position in the impression), "ts", "source"}

``request_id`` ties a click to its impression; ``variant`` is the model variant that answered
("champion" or "challenger", from the API's ``variant`` field). Online metrics
(``streaming/online.py``) are computed from these and the ratings that follow.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

from .events import MAX_ID, MAX_TS_MS, InvalidEvent, _is_int, json_object

KINDS = ("impression", "click")
VARIANTS = ("champion", "challenger")
MAX_SHOWN = 100
MAX_FEEDBACK_BYTES = 4096


@dataclass(frozen=True)
class Feedback:
    kind: str
    event_id: str
    request_id: str
    user_id: int
    variant: str
    ts: int
    source: str
    movie_ids: tuple[int, ...] = ()      # impression
    movie_id: int | None = None          # click
    rank: int | None = None              # click

    @property
    def key(self) -> bytes:
        return str(self.user_id).encode()

    def to_json(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if v is not None and v != ()}
        if self.kind == "impression":
            body["movie_ids"] = list(self.movie_ids)
        return json.dumps(body, separators=(",", ":")).encode()


def impression(request_id: str, user_id: int, variant: str, movie_ids: list[int], ts: int,
               source: str = "simulator") -> Feedback:
    return Feedback("impression", str(uuid.uuid4()), request_id, user_id, variant, ts, source, tuple(movie_ids))


def click(request_id: str, user_id: int, variant: str, movie_id: int, rank: int, ts: int,
          source: str = "simulator") -> Feedback:
    return Feedback("click", str(uuid.uuid4()), request_id, user_id, variant, ts, source, movie_id=movie_id, rank=rank)


def parse_feedback(raw: bytes) -> Feedback:
    """Bytes from the feedback topic -> ``Feedback`` or ``InvalidEvent`` with a reason."""
    obj = json_object(raw, MAX_FEEDBACK_BYTES)
    if obj.get("kind") not in KINDS:
        raise InvalidEvent("bad_feedback", f"kind must be one of {KINDS}")
    own = {"impression": {"movie_ids"}, "click": {"movie_id", "rank"}}[obj["kind"]]
    wanted = {"kind", "event_id", "request_id", "user_id", "variant", "ts", "source"} | own
    if set(obj) != wanted:
        raise InvalidEvent("bad_feedback", f"a {obj['kind']} has exactly the fields {sorted(wanted)}")
    ids = obj["movie_ids"] if obj["kind"] == "impression" else [obj["movie_id"]]
    if not (isinstance(ids, list) and 0 < len(ids) <= MAX_SHOWN and all(_is_int(m) and 1 <= m <= MAX_ID for m in ids)
            and _is_int(obj["user_id"]) and 1 <= obj["user_id"] <= MAX_ID
            and _is_int(obj["ts"]) and 0 <= obj["ts"] <= MAX_TS_MS
            and obj["variant"] in VARIANTS and isinstance(obj["source"], str) and len(obj["source"]) <= 32
            and all(isinstance(obj[k], str) and len(obj[k]) <= 64 for k in ("event_id", "request_id"))
            and (obj["kind"] == "impression" or (_is_int(obj["rank"]) and 1 <= obj["rank"] <= MAX_SHOWN))):
        raise InvalidEvent("bad_feedback", "ids 1..2^31-1 (1 to 100 films shown), ts epoch ms, variant champion or "
                                           "challenger, rank 1..100, short strings")
    return Feedback(obj["kind"], obj["event_id"], obj["request_id"], obj["user_id"], obj["variant"], obj["ts"],
                    obj["source"], tuple(obj.get("movie_ids", ())), obj.get("movie_id"), obj.get("rank"))

"""Privacy rules: who is a person, the two consent purposes, and the privacy event that carries a
person's choices (and their erasure) to every component.

Lawful basis. User ids from ``web.first_user_id`` up belong to people with an account: their data
is used on their **consent**, given per purpose, and nothing is assumed before they choose (both
purposes off). Lower ids are MovieLens research data or the simulator's synthetic users, not
consenting people: basis **research**, both purposes on.

Purposes.
    personalisation   recommendations from one's own ratings: the streaming job folds the person's
                      ratings into a vector. Without it: no vector, non-personal recommendations.
    analytics         the person's events in the activity data (``ratings`` index, dashboards) and
                      in training data. Without it they are left out of both.
Film statistics (counts and means every visitor sees) are part of the service and count every
rating; an erasure removes the person's ratings from them too.

Privacy events. Topic ``kafka.privacy_topic`` (compacted, key = user id) holds each user's latest
choice: ``{"user_id", "personalisation", "analytics", "erased", "ts", "version"}`` (``version``: of
the privacy text the person agreed to). Compaction keeps the latest event per user forever, so the
list of erased users outlives the ratings topic's retention. Written by the web app (sign-up,
consent change, erasure) and ``cinerec privacy erase``; read by the streaming job (applied to its
state, exactly once with the checkpoint), by training and indexing and
by replay (``PrivacyBook``). An erasure is final: user ids are never reused.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .events import MAX_ID, InvalidEvent, _is_int, json_object

PRIVACY_TEXT_VERSION = "2026-12-02"
PURPOSES = ("personalisation", "analytics")
MAX_PRIVACY_EVENT_BYTES = 512


@dataclass(frozen=True)
class PrivacyEvent:
    user_id: int
    personalisation: bool
    analytics: bool
    erased: bool
    ts: int
    version: str = PRIVACY_TEXT_VERSION

    @property
    def key(self) -> bytes:
        return str(self.user_id).encode()

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    def choices(self) -> dict:
        return {"personalisation": self.personalisation, "analytics": self.analytics, "erased": self.erased}


def consent(user_id: int, *, personalisation: bool, analytics: bool, ts: int | None = None) -> PrivacyEvent:
    return PrivacyEvent(user_id, bool(personalisation), bool(analytics), False, ts or _now())


def erasure(user_id: int, ts: int | None = None) -> PrivacyEvent:
    return PrivacyEvent(user_id, False, False, True, ts or _now())


def is_person(user_id: int, first_person_id: int) -> bool:
    return user_id >= first_person_id


def basis(user_id: int, first_person_id: int) -> str:
    """The lawful basis of processing a user's data: "consent" (a person) or "research"."""
    return "consent" if is_person(user_id, first_person_id) else "research"


def default_choices(user_id: int, first_person_id: int) -> dict:
    """What holds before any privacy event: a person has consented to nothing; research data is used."""
    allowed = not is_person(user_id, first_person_id)
    return {"personalisation": allowed, "analytics": allowed, "erased": False}


def effective(user_id: int, choices: PrivacyEvent | dict | None, first_person_id: int) -> dict:
    """What is in force for a user: their latest choices (an event or its ``choices()``), else the
    defaults; with the lawful basis."""
    if isinstance(choices, PrivacyEvent):
        choices = choices.choices()
    return {**(choices or default_choices(user_id, first_person_id)), "basis": basis(user_id, first_person_id)}


def supersedes_choice(current: PrivacyEvent | dict | None, new: PrivacyEvent) -> bool:
    """Whether ``new`` replaces ``current`` (an event or its choices with "ts"): the later one
    does, except that an erasure is final."""
    if current is None:
        return True
    current = current if isinstance(current, dict) else {**current.choices(), "ts": current.ts}
    return not current["erased"] and current["ts"] <= new.ts


def parse_privacy_event(raw: bytes) -> PrivacyEvent:
    """Bytes from the privacy topic -> ``PrivacyEvent`` or ``InvalidEvent`` naming what is wrong."""
    obj = json_object(raw, MAX_PRIVACY_EVENT_BYTES)
    fields = set(PrivacyEvent.__dataclass_fields__)
    if set(obj) != fields:
        raise InvalidEvent("bad_privacy_event", f"expected the fields {sorted(fields)}")
    if not (_is_int(obj["user_id"]) and 1 <= obj["user_id"] <= MAX_ID and _is_int(obj["ts"]) and obj["ts"] >= 0
            and all(isinstance(obj[p], bool) for p in (*PURPOSES, "erased")) and isinstance(obj["version"], str)
            and len(obj["version"]) <= 32):
        raise InvalidEvent("bad_privacy_event", "user_id 1..2^31-1, ts ≥ 0, purposes and erased booleans, "
                                                "version a short string")
    if obj["erased"] and (obj["personalisation"] or obj["analytics"]):
        raise InvalidEvent("bad_privacy_event", "an erased user consents to nothing")
    return PrivacyEvent(**obj)


@dataclass(frozen=True)
class PrivacyBook:
    """Every user's privacy choices as of the privacy topic: latest events plus the defaults."""
    events: dict[int, PrivacyEvent]
    first_person_id: int

    def document_fields(self, user_id: int) -> dict:
        """The privacy fields of a ``users`` document (``search.documents.user_document``)."""
        return effective(user_id, self.events.get(int(user_id)), self.first_person_id)

    def erased(self) -> set[int]:
        return {u for u, e in self.events.items() if e.erased}

    def untrainable(self) -> set[int]:
        """Users whose ratings training and indexing must leave out: erased, or consent to analytics
        withdrawn. (People reach training data only through the stream, which applies the same
        rule with the defaults: ``effective``.)"""
        return {u for u, e in self.events.items() if e.erased or not e.analytics}


def _now() -> int:
    return int(time.time() * 1000)


def rows_in_features(features_dir: Path, user_id: int) -> int:
    """Rows naming the user in the Parquet files of ``batch.preprocess``'s cached outputs
    (``<data_dir>/features/<fingerprint>/``: ratings, users, tags and their staged input)."""
    import pandas as pd

    found = 0
    for path in Path(features_dir).rglob("*.parquet"):
        if path.is_file() and any(part.startswith(("ratings", "users", "tags")) for part in path.parts[-2:]):
            frame = pd.read_parquet(path)
            found += int((frame["user_id"] == user_id).sum()) if "user_id" in frame else 0
    return found


def forget_in_features(features_dir: Path, user_id: int) -> list[str]:
    """Deletes every cached preprocessing output that holds the user (the next training rebuilds
    it without them); returns the deleted folders' names."""
    gone = []
    for target in sorted(p for p in Path(features_dir).glob("*") if p.is_dir()):
        if rows_in_features(target, user_id):
            shutil.rmtree(target)
            gone.append(target.name)
    return gone

"""Deliberately bad events, one function per defect, to exercise the dead-letter path.

Each takes a valid event as a dict and returns the bytes to publish; ``core.events.parse_event``
must reject every one of them with the matching reason.
"""

from __future__ import annotations

import json
import random

KINDS = ("bad_json", "missing_field", "wrong_type", "out_of_range")


def malform(event: dict, kind: str, rng: random.Random) -> bytes:
    return _MAKERS[kind](dict(event), rng)


def _bad_json(event: dict, rng: random.Random) -> bytes:
    text = json.dumps(event)
    return text[: rng.randrange(1, len(text) - 1)].encode()


def _missing_field(event: dict, rng: random.Random) -> bytes:
    del event[rng.choice(sorted(event))]
    return json.dumps(event).encode()


def _wrong_type(event: dict, rng: random.Random) -> bytes:
    field = rng.choice(["user_id", "movie_id", "rating", "ts"])
    event[field] = rng.choice([str(event[field]), None, [event[field]], True])
    return json.dumps(event).encode()


def _out_of_range(event: dict, rng: random.Random) -> bytes:
    event["rating"] = rng.choice([0.0, 5.5, 7.0, -1.0, 3.3])
    return json.dumps(event).encode()


_MAKERS = {"bad_json": _bad_json, "missing_field": _missing_field, "wrong_type": _wrong_type,
           "out_of_range": _out_of_range}

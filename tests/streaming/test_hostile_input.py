"""Generated hostile input through the real job: arbitrary JSON values and raw bytes (any type and
size up to the broker's limit, unicode, nesting, duplicate keys, huge numbers, odd keys) among
valid events. Every record ends accepted or in the DLQ with a known reason, the job stays up,
and the valid events' effects equal a ledger of them."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from test_job import processor, truth, world  # noqa: F401 - world is the job tests' fixture

from cinerec.core.events import FIELDS, MAX_EVENT_BYTES, REASONS, InvalidEvent, parse_event
from cinerec.ops import services as svc
from cinerec.simulator.producer import Message, publish
from cinerec.streaming.job import start

from kafka_helpers import consume_all

pytestmark = [pytest.mark.services, pytest.mark.spark]
BROKER_LIMIT = 1_000_000        # the producer's message.max.bytes (the broker takes a little more)

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 10, max_value=2**80)
           | st.floats() | st.text(max_size=50))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=5), max_leaves=30)


def near_valid() -> dict:
    return {"event_id": str(uuid.uuid4()), "user_id": 7, "movie_id": 3, "rating": 4.0,
            "ts": int(time.time() * 1000), "source": "simulator"}


@st.composite
def almost_events(draw) -> bytes:
    """A valid event with one field replaced by anything, or an extra or repeated key."""
    event = near_valid()
    how = draw(st.sampled_from(["replace", "extra", "repeat", "drop"]))
    field = draw(st.sampled_from(FIELDS))
    if how == "replace":
        event[field] = draw(JSON)
    elif how == "extra":
        event[draw(st.text(max_size=10))] = draw(JSON)
    elif how == "drop":
        del event[field]
    text = json.dumps(event, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if how == "repeat":
        text = text[:-1] + f', "{field}": {json.dumps(draw(JSON))}}}'
    return text.encode("utf-8", "surrogatepass")


HOSTILE = st.one_of(
    st.binary(max_size=2 * MAX_EVENT_BYTES),
    JSON.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    almost_events(),
    st.integers(1, 6000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(MAX_EVENT_BYTES, BROKER_LIMIT - 1000).map(lambda n: b'{"event_id": "' + b"x" * n + b'"}'),
)
KEYS = st.none() | st.binary(max_size=20) | st.just(b"7")


def poison(**changes) -> bytes:
    return json.dumps({**near_valid(), **changes}).encode()


# Each of these once stopped the job or would have: they run first, whatever Hypothesis draws.
KNOWN_POISON = [(b"1180591620717411303424", poison(user_id=1180591620717411303424)),
                (str(2**31).encode(), poison(user_id=2**31)), (b"7", poison(movie_id=2**63)),
                (b"7", poison(rating=10**400)), (None, poison(ts=2**64)), (None, poison(ts=2**40)),
                (None, b"[" * 2000 + b"]" * 2000), (b"7", b'{"user_id": 7, "user_id": 8}'),
                (b"\xff\xfe", poison()), (None, b"\xc3\x28"), (None, b"x" * (BROKER_LIMIT - 1000))]


def valid_events(n: int, seed: int) -> list[Message]:
    rng, now = np.random.default_rng(seed), int(time.time() * 1000)
    events = [{"event_id": str(uuid.UUID(int=int(rng.integers(1, 2**62)))), "user_id": int(rng.integers(1, 81)),
               "movie_id": int(rng.integers(1, 61)), "rating": float(rng.integers(1, 11)) / 2, "ts": now + i,
               "source": "simulator"} for i in range(n)]
    return [Message(str(e["user_id"]).encode(), json.dumps(e).encode(), "valid") for e in events]


@settings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(hostile=st.lists(st.tuples(KEYS, HOSTILE), min_size=5, max_size=40), seed=st.integers(0, 1000))
@example(hostile=KNOWN_POISON, seed=0)
def test_every_record_is_accepted_or_dead_lettered_and_valid_effects_are_exact(
        hostile, seed, world, fresh_indices, base_settings, spark):  # noqa: F811
    es, (frames, _) = fresh_indices, world
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    own = base_settings.replace(kafka__ratings_topic=name, kafka__dlq_topic=f"{name}.dlq",
                                kafka__privacy_topic=f"{name}.privacy")
    svc.ensure_topics(own.kafka)
    try:
        valid = valid_events(60, seed)
        mixed = [m for pair in zip(valid, [Message(k, v, "valid") for k, v in hostile]) for m in pair]
        mixed += valid[len(hostile):]
        assert publish(own.kafka, mixed, topic=name)["failed"] == 0
        reports: list[dict] = []
        query = start(spark, own, processor(world, es, own), catalog=set(map(int, frames["movies"]["movie_id"])),
                      checkpoint=Path(tempfile.mkdtemp(prefix="hostile-")), initial_ratings=frames["ratings"],
                      available_now=True, on_batch=reports.append)
        query.awaitTermination(300)
        assert query.exception() is None                                  # the job stayed up

        records = consume_all(own.kafka, name)
        letters = {(int(dict(m.headers())["source.partition"]), int(dict(m.headers())["source.offset"])):
                   dict(m.headers())["reason"].decode() for m in consume_all(own.kafka, f"{name}.dlq")}
        assert set(letters.values()) <= set(REASONS)
        accepted, catalog = [], set(frames["movies"]["movie_id"])
        for record in records:
            where = (record.partition(), record.offset())
            try:
                event = parse_event(record.value() or b"", record.timestamp()[1])
                fits = record.key() in (None, event.key) and event.movie_id in catalog
            except InvalidEvent:
                fits = False
            assert fits != (where in letters), (where, record.value()[:200], letters.get(where))
            if fits:
                accepted.append(event)
        ids = sorted({e.event_id for e in accepted})
        found = es.mget(index="ratings", ids=ids)["docs"]
        assert all(doc["found"] for doc in found)                        # every accepted event indexed once
        assert sum(r["accepted"] for r in reports) == len(ids) and sum(r["dead"] for r in reports) == len(letters)

        # The valid events' effects: each touched film's count and mean, each touched user's rated set.
        expected = truth(frames, [SimpleNamespace(value=e.to_json()) for e in accepted])
        es.indices.refresh(index=["film_stats", "users"])
        for movie in {e.movie_id for e in accepted}:
            values = [r for (u, m), (r, _) in expected.items() if m == movie]
            doc = es.get(index="film_stats", id=str(movie))["_source"]
            assert doc["rating_count"] == len(values) and doc["rating_mean"] == pytest.approx(np.mean(values))
        for user in {e.user_id for e in accepted}:
            rated = sorted(str(m) for (u, m) in expected if u == user)
            assert sorted(es.get(index="users", id=str(user))["_source"]["rated"]) == rated
    finally:
        svc.delete_topics(own.kafka, [name, f"{name}.dlq", f"{name}.privacy"])

"""Micro-batches through the processor on the real embedded Elasticsearch and Kafka: the
result equals a ledger of the events exactly, also when a batch is run twice (a crash
between the writes and Spark's commit)."""

import json
import uuid

import numpy as np
import pytest
from confluent_kafka import Producer
from planted import planted_frames

from batch.artifact import ModelArtifact
from batch.indexing import build_indices
from batch.interactions import Interactions
from batch.recommenders import create
from core.foldin import FoldIn
from kafka_helpers import consume_all
from streaming.processor import Model, RatingProcessor, initial_state
from streaming.validate import Record

pytestmark = pytest.mark.services
PARAMS = {"rank": 6, "iterations": 6, "regularization": 0.05, "alpha": 2.0}


@pytest.fixture(scope="module")
def world(fresh_indices):
    frames = planted_frames()
    movies, ratings = frames["movies"], frames["ratings"]
    movies["rating_count"] = movies["movie_id"].map(ratings.groupby("movie_id").size()).fillna(0).astype(int)
    movies["rating_mean"] = movies["movie_id"].map(ratings.groupby("movie_id")["rating"].mean())
    movies["bayesian_avg"] = movies["rating_mean"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    model = create("als", PARAMS).fit(Interactions.build(ratings, users, items))
    artifact = ModelArtifact("als", model.params, users, items, model.user_factors, model.item_factors)
    build_indices(fresh_indices, frames, artifact, version=1)
    return frames, artifact


def processor(world, es, settings, state_dir):
    frames, artifact = world
    initial, base = initial_state(frames["ratings"])
    model = Model(list(artifact.item_ids), artifact.item_factors, PARAMS["regularization"], PARAMS["alpha"], "1")
    return RatingProcessor(es=es, producer=Producer(settings.kafka.client_config()),
                           dlq_topic=settings.kafka.dlq_topic, model=model,
                           catalog=set(map(int, frames["movies"]["movie_id"])), state_dir=state_dir,
                           initial_ratings=initial, film_base=base)


def ledger(n: int, seed: int) -> list[Record]:
    """n records: valid ratings (with re-ratings and a re-sent event), and bad ones."""
    rng = np.random.default_rng(seed)
    records, sent = [], []
    for i in range(n):
        user, movie = int(rng.integers(1, 81)), int(rng.integers(1, 61))
        if i % 17 == 5:
            value = b"{broken"
        elif i % 23 == 7 and sent:
            value = sent[-1]                                  # the same event again
        else:
            value = json.dumps({"event_id": str(uuid.UUID(int=int(rng.integers(1, 2**62)))),
                                "user_id": user, "movie_id": movie,
                                "rating": float(rng.integers(1, 11)) / 2, "ts": 2 * 10**12 + i,
                                "source": "simulator"}).encode()
            sent.append(value)
        key = json.loads(value)["user_id"] if value.startswith(b'{"') else user
        records.append(Record(value, partition=i % 3, offset=i // 3, key=str(key).encode()))
    return records


def truth(frames, records):
    current = {(int(r.user_id), int(r.movie_id)): (float(r.rating), int(r.ts)) for r in frames["ratings"].itertuples()}
    for record in records:
        if not record.value.startswith(b'{"'):
            continue
        e = json.loads(record.value)
        old = current.get((e["user_id"], e["movie_id"]))
        if old is None or old[1] < e["ts"]:
            current[(e["user_id"], e["movie_id"])] = (e["rating"], e["ts"])
    return current


def test_batches_and_a_repeated_batch_match_the_ledger_exactly(world, fresh_indices, settings, tmp_path):
    es, (frames, artifact) = fresh_indices, world
    records = ledger(300, seed=1)
    batches = [records[i:i + 100] for i in range(0, 300, 100)]
    run = processor(world, es, settings, tmp_path / "state")
    for batch_id, batch in enumerate(batches):
        run.process(batch, batch_id)
    # crash after batch 2's writes, before Spark committed it: a new process re-runs batch 2
    again = processor(world, es, settings, tmp_path / "state").process(batches[2], 2)
    assert again["accepted"] > 0

    expected = truth(frames, records)
    for movie in range(1, 61):
        values = [r for (u, m), (r, _) in expected.items() if m == movie]
        doc = es.get(index="films", id=str(movie))["_source"]
        assert doc["rating_count"] == len(values), movie
        assert doc["rating_mean"] == pytest.approx(np.mean(values)), movie
    fold = FoldIn(artifact.item_factors, PARAMS["regularization"], PARAMS["alpha"])
    index = {int(m): i for i, m in enumerate(artifact.item_ids)}
    touched = {json.loads(r.value)["user_id"] for r in records if r.value.startswith(b'{"')}
    for user in touched:
        mine = {m: r for (u, m), (r, _) in expected.items() if u == user}
        doc = es.get(index="users", id=str(user))["_source"]
        assert sorted(doc["rated"]) == sorted(str(m) for m in mine)
        items = sorted(mine)
        solved = fold.user_vector(np.array([index[m] for m in items]), np.array([mine[m] for m in items]))
        np.testing.assert_allclose(doc["vector"], solved, rtol=1e-6, atol=1e-9)
    accepted_ids = {json.loads(r.value)["event_id"] for r in records if r.value.startswith(b'{"')}
    assert es.count(index="ratings")["count"] == len(accepted_ids)
    dead = consume_all(settings.kafka, settings.kafka.dlq_topic)
    broken = sum(1 for r in records if not r.value.startswith(b'{"'))
    assert broken <= len(dead) <= broken + sum(1 for r in batches[2] if not r.value.startswith(b'{"'))
    assert {h[0] for h in dead[0].headers()} >= {"reason", "source.partition", "source.offset"}


@pytest.mark.spark
def test_the_spark_job_applies_published_events(world, fresh_indices, settings, spark, tmp_path):
    from simulator.producer import Message, publish
    from streaming.job import start

    es = fresh_indices
    events = [{"event_id": str(uuid.uuid4()), "user_id": 2, "movie_id": m, "rating": 5.0,
               "ts": 3 * 10**12 + m, "source": "api"} for m in (40, 41, 42)]
    messages = [Message(b"2", json.dumps(e).encode(), "valid") for e in events] + [Message(b"2", b"junk", "bad_json")]
    assert publish(settings.kafka, messages, topic=settings.kafka.ratings_topic)["sent"] == 4
    reports = []
    query = start(spark, settings.kafka, processor(world, es, settings, tmp_path / "state"),
                  checkpoint=tmp_path / "ckpt", available_now=True, on_batch=reports.append)
    query.awaitTermination(120)
    assert query.exception() is None
    assert sum(r["accepted"] for r in reports) == 3 and sum(r["dead"] for r in reports) == 1
    rated = es.get(index="users", id="2")["_source"]["rated"]
    assert {"40", "41", "42"} <= set(rated)

"""The streaming query on real Spark, Kafka and Elasticsearch: keyed state in Spark's state
store, the result equals a ledger of the events exactly, also when Spark re-runs a batch whose
writes were done but whose commit was lost (a crash between the two)."""

import json
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer
from planted import indexable_frames
from prometheus_client import REGISTRY

from cinerec.batch.indexing import build_indices, with_streamed
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.core.artifact import ModelArtifact
from cinerec.core.events import RatingEvent, supersedes
from cinerec.core.foldin import FoldIn
from cinerec.simulator.producer import Message, publish
from cinerec.streaming.job import start
from cinerec.streaming.processor import Model, RatingProcessor
from cinerec.streaming.state import OUTPUT_COLUMNS, RATING, trend_fields
from cinerec.streaming.stateful import stored_trending, stored_users, streamed_ratings
from cinerec.streaming.validate import Record

from kafka_helpers import consume_all

pytestmark = [pytest.mark.services, pytest.mark.spark]
PARAMS = {"rank": 6, "iterations": 6, "regularization": 0.05, "alpha": 2.0}


@pytest.fixture(scope="module")
def world(fresh_indices):
    frames = indexable_frames()
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    model = create("als", PARAMS).fit(Interactions.build(ratings, users, items))
    artifact = ModelArtifact("als", model.params, users, items, model.user_factors, model.item_factors)
    build_indices(fresh_indices, frames, artifact, version=1)
    return frames, artifact


def processor(world, es, settings):
    frames, artifact = world
    model = Model(list(artifact.item_ids), artifact.item_factors, PARAMS["regularization"], PARAMS["alpha"], "1")
    return RatingProcessor(es=es, producer=Producer(settings.kafka.client_config()),
                           dlq_topic=settings.kafka.dlq_topic, model=model, bayesian_prior=(10.0, 3.5))


def state_rows(*rows: dict) -> pd.DataFrame:
    """Rows as the state step emits them (``state.OUTPUT_COLUMNS``; each names its kind's columns)."""
    return pd.DataFrame(list(rows), columns=OUTPUT_COLUMNS)


def user_row(user: int, ratings: list[list]) -> dict:
    """A user row: their current ratings [[movie, rating, ts], …], research data's choices."""
    records = np.array([(m, r, ts, b"e") for m, r, ts in ratings], dtype=RATING)
    return {"kind": "user", "entity": user, "ratings": records.tobytes(), "personalisation": True,
            "analytics": True, "erased": False, "basis": "research", "privacy_changed": False, "duplicates": 0}


def run(spark, world, es, settings, checkpoint, **streaming) -> list[dict]:
    """One availableNow run of the job (``streaming``: settings of that section); returns the batch reports."""
    frames, _ = world
    reports: list[dict] = []
    settings = settings.replace(**{f"streaming__{key}": value for key, value in streaming.items()})
    query = start(spark, settings, processor(world, es, settings),
                  catalog=set(map(int, frames["movies"]["movie_id"])), checkpoint=checkpoint,
                  initial_ratings=frames["ratings"], available_now=True, on_batch=reports.append)
    query.awaitTermination(300)
    assert query.exception() is None
    return reports


def ledger(n: int, seed: int) -> list[Record]:
    """n records: valid ratings (with re-ratings and a re-sent event), and bad ones."""
    rng = np.random.default_rng(seed)
    records, sent, now = [], [], int(time.time() * 1000)     # event times now: they count as trending
    for i in range(n):
        user, movie = int(rng.integers(1, 81)), int(rng.integers(1, 61))
        if i % 17 == 5:
            value = b"{broken"
        elif i % 23 == 7 and sent:
            value = sent[-1]                                  # the same event again
        else:
            value = RatingEvent(str(uuid.UUID(int=int(rng.integers(1, 2**62)))), user, movie,
                                float(rng.integers(1, 11)) / 2, now + i, "simulator").to_json()
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
        if supersedes(current.get((e["user_id"], e["movie_id"])), e["rating"], e["ts"]):
            current[(e["user_id"], e["movie_id"])] = (e["rating"], e["ts"])
    return current


def test_batches_and_a_re_run_batch_match_the_ledger_exactly(world, fresh_indices, settings, spark, tmp_path):
    es, (frames, artifact) = fresh_indices, world
    records = ledger(300, seed=1)
    sent = publish(settings.kafka, [Message(r.key, r.value, "valid") for r in records],
                   topic=settings.kafka.ratings_topic)
    assert sent["failed"] == 0
    checkpoint = tmp_path / "ckpt"
    accepted_before = REGISTRY.get_sample_value("cinerec_stream_events_total", {"outcome": "accepted"}) or 0.0
    first = run(spark, world, es, settings, checkpoint, max_offsets_per_trigger=100, state_buckets=4)
    assert len(first) >= 3
    # A crash after the last batch's writes, before Spark committed it: the restart re-runs it.
    last = max(r["batch"] for r in first)
    (checkpoint / "commits" / str(last)).unlink()
    (checkpoint / "commits" / f".{last}.crc").unlink()
    again = run(spark, world, es, settings, checkpoint, max_offsets_per_trigger=100, state_buckets=4)
    assert [r["batch"] for r in again] == [last]
    assert again[0]["accepted"] == [r for r in first if r["batch"] == last][0]["accepted"] > 0

    expected = truth(frames, records)
    touched = {json.loads(r.value)["user_id"] for r in records if r.value.startswith(b'{"')}
    assert_indices_match(es, expected, artifact, touched)
    assert_trending_matches(es, records)
    accepted_ids = {json.loads(r.value)["event_id"] for r in records if r.value.startswith(b'{"')}
    es.indices.refresh(index="ratings")                 # the job leaves it to refresh_interval
    assert es.count(index="ratings")["count"] == len(accepted_ids)
    assert sum(r["accepted"] + r["dead"] for r in first) == len(records)
    accepted_after = REGISTRY.get_sample_value("cinerec_stream_events_total", {"outcome": "accepted"})
    assert accepted_after - accepted_before == sum(r["accepted"] for r in first + again)
    resent = len(records) - len({r.value for r in records}) - (sum(not r.value.startswith(b'{"') for r in records) - 1)
    assert sum(r["duplicates"] for r in first) == resent > 0
    dead = consume_all(settings.kafka, settings.kafka.dlq_topic)
    broken = sum(1 for r in records if not r.value.startswith(b'{"'))
    assert broken <= len(dead) <= broken + again[0]["dead"]
    assert {h[0] for h in dead[0].headers()} >= {"reason", "source.partition", "source.offset"}
    assert json.loads(dead[0].value())["reason"] == "bad_json"

    # A new champion with refold-all: every user is re-folded from the job's state at once.
    newer = Model(list(artifact.item_ids), artifact.item_factors * 3, PARAMS["regularization"], PARAMS["alpha"], "2")
    job = processor(world, es, settings)
    job.all_users, job.refold_pending = (lambda: stored_users(spark, checkpoint)), False
    job.champion, job.check_model_s = (lambda current: newer if current != "2" else None), 0.0
    assert job.process(state_rows(), last + 1)["refolded"] == len(frames["ratings"]["user_id"].unique())
    fold, index = newer.fold(), {int(m): i for i, m in enumerate(artifact.item_ids)}
    for user in sorted(touched)[:10]:
        mine = {m: r for (u, m), (r, _) in expected.items() if u == user}
        doc = es.get(index="users", id=str(user))["_source"]
        solved = fold.user_vector(np.array([index[m] for m in sorted(mine)]), np.array([mine[m] for m in sorted(mine)]))
        assert doc["model_version"] == "2"
        np.testing.assert_allclose(doc["vector"], solved, rtol=1e-6, atol=1e-9)
    assert job.process(state_rows(), last + 2)["refolded"] == 0                 # nothing stale any more

    # `cinerec index` rebuilds films and users with every rating the job took, not only training's.
    streamed = streamed_ratings(spark, checkpoint)
    training = {(int(r.user_id), int(r.movie_id)): (float(r.rating), int(r.ts)) for r in frames["ratings"].itertuples()}
    assert len(streamed) == sum(training.get(pair) != value for pair, value in expected.items()) > 0
    trending = stored_trending(spark, checkpoint, 3_600_000)
    build_indices(es, *with_streamed(frames, artifact, streamed, (10.0, 3.5)), version=3, film_fields=trending)
    assert_indices_match(es, expected, artifact, touched)
    assert_trending_matches(es, records)


def assert_trending_matches(es, records):
    """Each film's trending is the number of distinct events it got (all inside the window)."""
    events = {json.loads(r.value)["event_id"]: json.loads(r.value)["movie_id"]
              for r in records if r.value.startswith(b'{"')}
    for movie in range(1, 61):
        doc = es.get(index="film_stats", id=str(movie))["_source"]
        assert doc["trending"] == sum(m == movie for m in events.values()), movie


def assert_indices_match(es, expected, artifact, users):
    """Every film's count, mean and likes, and the users' rated, liked and vectors, as ``expected``."""
    for movie in range(1, 61):
        values = [r for (u, m), (r, _) in expected.items() if m == movie]
        doc = es.get(index="film_stats", id=str(movie))["_source"]
        assert doc["rating_count"] == len(values), movie
        assert doc["rating_mean"] == pytest.approx(np.mean(values)), movie
        assert doc["like_count"] == sum(v >= 4 for v in values), movie
    fold = FoldIn(artifact.item_factors, PARAMS["regularization"], PARAMS["alpha"])
    index = {int(m): i for i, m in enumerate(artifact.item_ids)}
    for user in users:
        mine = {m: r for (u, m), (r, _) in expected.items() if u == user}
        doc = es.get(index="users", id=str(user))["_source"]
        assert sorted(doc["rated"]) == sorted(str(m) for m in mine)
        assert sorted(doc["liked"]) == sorted(str(m) for m, r in mine.items() if r >= 4)
        items = sorted(mine)
        solved = fold.user_vector(np.array([index[m] for m in items]), np.array([mine[m] for m in items]))
        np.testing.assert_allclose(doc["vector"], solved, rtol=1e-6, atol=1e-9)


def test_a_new_champion_is_used_from_the_next_batch(world, fresh_indices, settings):
    frames, artifact = world
    es = fresh_indices
    newer = Model(list(artifact.item_ids), artifact.item_factors * 2, PARAMS["regularization"], PARAMS["alpha"], "2")
    job = processor(world, es, settings)
    job.champion, job.check_model_s = (lambda current: newer if current != "2" else None), 0.0
    ratings = [[1, 5.0, 1000], [2, 4.0, 1001]]
    report = job.process(state_rows(user_row(7, ratings)), 0)
    assert report["model_version"] == "2"
    doc = es.get(index="users", id="7")["_source"]
    assert doc["model_version"] == "2"
    index = {int(m): i for i, m in enumerate(artifact.item_ids)}
    expected = newer.fold().user_vector(np.array([index[1], index[2]]), np.array([5.0, 4.0]))
    np.testing.assert_allclose(doc["vector"], expected, rtol=1e-6, atol=1e-9)


def test_during_a_canary_the_challengers_users_are_folded_in_too(world, fresh_indices, settings):
    from cinerec.search.indices import create_index

    frames, artifact = world
    es = fresh_indices
    challenger = Model(list(artifact.item_ids), artifact.item_factors * 2, PARAMS["regularization"], PARAMS["alpha"],
                       "9")
    create_index(es, "users", 9, dims=artifact.item_factors.shape[1])      # what `canary start` builds
    job = processor(world, es, settings)
    running = {"canary": challenger}
    job.canary = lambda current: (None if running["canary"] is None
                                  else True if current == "9" else running["canary"])
    job.check_model_s = 0.0
    ratings = [[1, 5.0, 1000], [2, 4.0, 1001]]
    job.process(state_rows(user_row(7, ratings)), 0)
    es.indices.refresh(index="users-v9")
    served, tried = es.get(index="users", id="7")["_source"], es.get(index="users-v9", id="7")["_source"]
    assert served["model_version"] == job.model.version != "9" and tried["model_version"] == "9"
    index = {int(m): i for i, m in enumerate(artifact.item_ids)}
    expected = challenger.fold().user_vector(np.array([index[1], index[2]]), np.array([5.0, 4.0]))
    np.testing.assert_allclose(tried["vector"], expected, rtol=1e-6, atol=1e-9)

    running["canary"] = None                                                  # decided: no more writes
    job.process(state_rows(user_row(7, ratings + [[3, 1.0, 1002]])), 1)
    es.indices.refresh(index="users-v9")
    assert es.get(index="users-v9", id="7")["_source"]["rated"] == tried["rated"] == ["1", "2"]
    assert sorted(es.get(index="users", id="7")["_source"]["rated"]) == ["1", "2", "3"]


def test_trending_drops_on_the_clock_when_nobody_rates(world, fresh_indices, settings):
    es, minute = fresh_indices, 60_000
    job = processor(world, es, settings)
    job.trending_window_ms = 10 * minute
    start = 1_000 * minute                                  # two buckets, 3 minutes apart
    job.process(state_rows({"kind": "film", "entity": 3, "rating_count": 5, "rating_sum": 20.0, "like_count": 3,
                            **trend_fields({start: 2, start + 3 * minute: 1}, job.trending_window_ms)}), 0)
    doc = es.get(index="film_stats", id="3")["_source"]
    assert (doc["trending"], doc["trending_until"]) == (3, start + 11 * minute)
    # The sweep searches film_stats, which the job never refreshes: it sees what its refresh_interval
    # (1 s) has made searchable; the refreshes here stand for that second.
    es.indices.refresh(index="film_stats")
    assert job.decay_trending(now_ms=start + 11 * minute - 1) == 0           # nothing left the window yet
    assert job.decay_trending(now_ms=start + 11 * minute) == 1
    doc = es.get(index="film_stats", id="3")["_source"]
    assert (doc["trending"], doc["trending_until"], doc["rating_count"]) == (1, start + 14 * minute, 5)
    es.indices.refresh(index="film_stats")
    assert job.decay_trending(now_ms=start + 14 * minute) == 1
    doc = es.get(index="film_stats", id="3")["_source"]
    assert (doc["trending"], doc["trending_until"]) == (0, None)
    es.indices.refresh(index="film_stats")
    assert job.decay_trending(now_ms=start + 60 * minute) == 0               # and it stays out of the sweep


def test_the_job_re_scores_also_watched_for_the_films_its_ratings_touched(spark, world, fresh_indices, settings,
                                                                          tmp_path):
    from planted import block_of

    frames, _ = world
    stored = fresh_indices.get(index="film_lists", id="5")["_source"]["also_watched"]
    other_block = sum(block_of(e["movie_id"]) == 1 for e in stored)        # few: the ledgers' random ratings
    now = int(time.time() * 1000)
    likes = [Message(str(user).encode(), RatingEvent(str(uuid.uuid4()), user, 5, 5.0, now + user,
                                                     "simulator").to_json(), "valid")
             for user in range(41, 81)]                                    # the other block likes film 5
    assert publish(settings.kafka, likes, topic=settings.kafka.ratings_topic)["sent"] == len(likes)
    job = processor(world, fresh_indices, settings)
    query = start(spark, settings, job, catalog=set(map(int, frames["movies"]["movie_id"])),
                  checkpoint=tmp_path / "ckpt", initial_ratings=frames["ratings"], available_now=True)
    query.awaitTermination(300)
    assert query.exception() is None and 5 in job.liked_changed
    fresh_indices.indices.refresh(index="users")     # stands for the refresh interval the clock waits out
    assert job.refresh_also_watched(settled_s=0) >= 1 and 5 not in job.liked_changed
    fresh_indices.indices.refresh(index="film_lists")
    rescored = fresh_indices.get(index="film_lists", id="5")["_source"]["also_watched"]
    assert sum(block_of(e["movie_id"]) == 1 for e in rescored) > other_block   # its new co-likes show
    assert max(e["together"] for e in rescored if block_of(e["movie_id"]) == 1) >= 15
    assert all(e["title"] and e["together"] > 0 for e in rescored)

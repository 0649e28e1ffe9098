"""Spark's Kafka source under a real Spark streaming query: exact offsets, resumes from the
checkpoint without skipping or repeating a message."""

import time

import pytest

from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.world import generate
from cinerec.streaming.source import rating_stream

pytestmark = [pytest.mark.services, pytest.mark.spark]


@pytest.fixture(scope="module")
def tastes():
    return generate(seed=9, users=50, movies=80, mean_ratings_per_user=25, min_ratings_per_user=20,
                    latent_dim=4).tastes


def run_once(spark, settings, checkpoint, batches: dict | None = None, **options) -> list:
    """One availableNow run of the query; returns every row it delivered (and fills ``batches``:
    batch id -> rows)."""
    rows: list = []
    batches = {} if batches is None else batches

    def collect(frame, batch_id):
        batches[batch_id] = frame.collect()
        rows.extend(batches[batch_id])

    query = (rating_stream(spark, settings.kafka, **options).writeStream
             .foreachBatch(collect)
             .option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start())
    query.awaitTermination(120)
    assert query.exception() is None
    return rows


def produce(settings, tastes, n, seed):
    summary = publish(settings.kafka, simulated_messages(tastes, seed=seed, rate=0, count=n),
                      topic=settings.kafka.ratings_topic)
    assert summary["sent"] == n
    return summary["partitions"]


def test_reads_every_message_once_and_resumes_from_the_checkpoint(spark, settings, tastes, tmp_path):
    first = produce(settings, tastes, 400, seed=1)
    rows = run_once(spark, settings, tmp_path / "ckpt")
    assert len(rows) == 400
    assert {str(p): sum(1 for r in rows if r.partition == int(p)) for p in first} == first
    assert len({(r.partition, r.offset) for r in rows}) == 400
    assert all(r.topic == settings.kafka.ratings_topic and r.key == str(int(r.key)).encode() for r in rows)

    produce(settings, tastes, 250, seed=2)
    more = run_once(spark, settings, tmp_path / "ckpt")
    assert len(more) == 250                                           # only the new messages
    assert not {(r.partition, r.offset) for r in more} & {(r.partition, r.offset) for r in rows}
    assert run_once(spark, settings, tmp_path / "ckpt") == []         # nothing new, nothing re-read


def test_max_offsets_per_trigger_splits_the_backlog(spark, settings, tastes, tmp_path):
    produce(settings, tastes, 300, seed=3)
    batches: list = []
    query = (rating_stream(spark, settings.kafka, max_offsets_per_trigger=90).writeStream
             .foreachBatch(lambda frame, _: batches.append(frame.count()))
             .option("checkpointLocation", str(tmp_path / "ckpt"))
             .trigger(processingTime="100 milliseconds").start())
    deadline = time.monotonic() + 120
    while sum(batches) < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()
    assert sum(batches) == 300 and max(batches) <= 90 and len([b for b in batches if b]) >= 4


def test_starting_offsets_latest_skips_the_backlog(spark, settings, tastes, tmp_path):
    produce(settings, tastes, 100, seed=4)
    assert run_once(spark, settings, tmp_path / "ckpt", starting_offsets="latest") == []


def test_available_now_keeps_the_batch_limit_and_finishes_an_unfinished_batch_first(spark, settings, tastes,
                                                                                    tmp_path):
    checkpoint = tmp_path / "ckpt"
    produce(settings, tastes, 200, seed=5)
    first: dict = {}
    assert len(run_once(spark, settings, checkpoint, first, max_offsets_per_trigger=90)) == 200
    assert len(first) >= 3 and max(len(rows) for rows in first.values()) <= 90

    # A crash after Spark logged the last batch's offsets but before it committed the batch.
    last = max(first)
    (checkpoint / "commits" / str(last)).unlink()
    (checkpoint / "commits" / f".{last}.crc").unlink()
    produce(settings, tastes, 150, seed=6)
    again: dict = {}
    rows = run_once(spark, settings, checkpoint, again, max_offsets_per_trigger=90)
    def offsets(batch):
        return sorted((r.partition, r.offset) for r in batch)
    assert min(again) == last and offsets(again[last]) == offsets(first[last])   # the same batch, the same rows
    assert len(rows) == len(first[last]) + 150                        # then everything new, once
    assert len({(r.partition, r.offset) for r in rows}) == len(rows)

"""The Python Kafka source under a real Spark streaming query: exact offsets, resumes from the
checkpoint without skipping or repeating a message."""

import time

import pytest

from simulator.producer import publish, simulated_messages
from simulator.world import generate
from streaming.source import rating_stream

pytestmark = [pytest.mark.services, pytest.mark.spark]


@pytest.fixture(scope="module")
def tastes():
    return generate(seed=9, users=50, movies=80, mean_ratings_per_user=25, min_ratings_per_user=20,
                    latent_dim=4).tastes


def run_once(spark, settings, checkpoint, **options) -> list:
    """One availableNow run of the query; returns every row it delivered."""
    rows: list = []
    query = (rating_stream(spark, settings.kafka, **options).writeStream
             .foreachBatch(lambda frame, _: rows.extend(frame.collect()))
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
    # (Trigger.AvailableNow reads everything in one batch by Spark's design; a processing-time
    # trigger applies the source's default read limit.)
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

"""Prometheus metrics of the streaming job, served by ``cinerec stream`` on ``streaming.metrics_port``.

    cinerec_stream_events_total{outcome}          accepted | dead (to the DLQ) | duplicate
    cinerec_stream_input_rows_per_second          Spark's input rate of the last micro-batch
    cinerec_stream_batch_seconds                  driver time of a micro-batch (writes included)
    cinerec_stream_trigger_phase_seconds{phase}   Spark's time per phase of the last trigger
                                                  (latestOffset, addBatch, walCommit, triggerExecution…)
    cinerec_stream_input_lag{partition}           records in Kafka not yet read by the query
    cinerec_stream_freshness_seconds              Kafka record time -> Elasticsearch write, per event
    cinerec_stream_model_version                  registry version of the model in use
    cinerec_stream_retries_total{step}            writes retried because Elasticsearch or Kafka was away
    cinerec_stream_memory_bytes                   resident memory of the job: driver, JVM, Python workers
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from cinerec.core.settings import KafkaSettings

EVENTS = Counter("cinerec_stream_events_total", "Rating events by outcome", ["outcome"])
INPUT_RATE = Gauge("cinerec_stream_input_rows_per_second", "Input rows per second of the last micro-batch")
BATCH_SECONDS = Histogram("cinerec_stream_batch_seconds", "Driver time per micro-batch",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
LAG = Gauge("cinerec_stream_input_lag", "Records in Kafka not yet read, per partition", ["partition"])
FRESHNESS = Histogram("cinerec_stream_freshness_seconds", "Kafka record time to Elasticsearch write",
                      buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
PHASE_SECONDS = Gauge("cinerec_stream_trigger_phase_seconds", "Spark's time per phase of the last trigger",
                      ["phase"])
DRIVER_PHASE_SECONDS = Gauge("cinerec_stream_driver_phase_seconds", "The driver's time per phase of the last "
                             "micro-batch (decode, fold_in, write_users, write_films, write_ratings…)", ["phase"])
STATE_HANDLER = Gauge("cinerec_stream_state_handler", "The Python state handler's figures in the last micro-batch, "
                      "summed over its groups (seconds, call_seconds, calls, groups)", ["figure"])
STATE_OPERATOR = Gauge("cinerec_stream_state_operator", "Spark's state operator in the last micro-batch "
                       "(rows updated, update/commit milliseconds, RocksDB metrics)", ["figure"])
QUEUE_WAIT = Gauge("cinerec_stream_queue_wait_seconds", "Kafka record time to the start of the micro-batch that "
                   "read it, oldest and newest record of the last batch", ["record"])
MEMORY = Gauge("cinerec_stream_memory_bytes", "Resident memory of the job: driver, JVM and Python workers")
RETRIES = Counter("cinerec_stream_retries_total", "Writes retried after an infrastructure fault", ["step"])
MODEL_VERSION = Gauge("cinerec_stream_model_version", "Registry version of the model the job folds with")


def observe_batch(*, accepted: int, dead: int, duplicates: int, seconds: float, freshness: list[float],
                  phases: dict[str, float] | None = None, state: dict | None = None) -> None:
    EVENTS.labels("accepted").inc(accepted)
    EVENTS.labels("dead").inc(dead)
    EVENTS.labels("duplicate").inc(duplicates)
    BATCH_SECONDS.observe(seconds)
    for phase, value in (phases or {}).items():
        DRIVER_PHASE_SECONDS.labels(phase).set(value)
    for figure in ("seconds", "call_seconds", "calls", "groups"):
        if state and figure in state:
            STATE_HANDLER.labels(figure).set(state[figure])
    for value in freshness:
        FRESHNESS.observe(max(0.0, value))


def trigger_figures(progress: dict, record_ts: list[int] | None = None) -> dict:
    """What a query progress says of one micro-batch: Spark's phases (seconds), the state operator's
    figures, and (given the batch's oldest and newest Kafka record time, ms) how long its records
    waited in Kafka before the batch started."""
    phases = {phase: millis / 1000 for phase, millis in (progress.get("durationMs") or {}).items()}
    operator = (progress.get("stateOperators") or [{}])[0]
    state = {key: operator[key] for key in ("numRowsTotal", "numRowsUpdated", "allUpdatesTimeMs", "commitTimeMs",
                                             "memoryUsedBytes") if key in operator}
    state.update({key: value for key, value in (operator.get("customMetrics") or {}).items()
                  if key.startswith("rocksdb") and value})
    figures = {"spark_s": phases, "state_operator": state}
    if record_ts:
        started = _epoch_ms(progress.get("timestamp"))
        if started is not None:
            figures["queue_wait_s"] = {"oldest": round((started - record_ts[0]) / 1000, 3),
                                       "newest": round((started - record_ts[1]) / 1000, 3)}
    return figures


def _epoch_ms(stamp: str | None) -> int | None:
    """Spark's progress timestamp ('2026-12-06T08:01:02.345Z') in epoch milliseconds."""
    from datetime import datetime

    if stamp is None:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except (AttributeError, ValueError):
        return None


def observe_progress(progress: dict, end_offsets: dict[int, int], topic: str, record_ts: list[int] | None = None
                     ) -> dict:
    """From a query progress (``query.lastProgress``) and the topic's end offsets (``{partition:
    offset}``). The Kafka source's end offset reads ``{"<topic>": {"<partition>": offset}}``.
    Returns ``trigger_figures`` of the progress."""
    INPUT_RATE.set(progress.get("inputRowsPerSecond") or 0.0)
    figures = trigger_figures(progress, record_ts)
    for phase, seconds in figures["spark_s"].items():
        PHASE_SECONDS.labels(phase).set(seconds)
    for figure, value in figures["state_operator"].items():
        STATE_OPERATOR.labels(figure).set(value)
    for record, seconds in (figures.get("queue_wait_s") or {}).items():
        QUEUE_WAIT.labels(record).set(seconds)
    MEMORY.set(tree_rss_bytes(os.getpid()))
    sources = progress.get("sources") or [{}]
    end = sources[0].get("endOffset") or {}
    read = (json.loads(end) if isinstance(end, str) else end).get(topic, {})
    for partition, end in end_offsets.items():
        LAG.labels(str(partition)).set(max(0, int(end) - int(read.get(str(partition), 0))))
    return figures


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc; just ``pid`` elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError):
            continue
    return total


def serve(port: int) -> None:
    """Serves ``/metrics`` on ``port`` from a daemon thread of the driver."""
    start_http_server(port)


def progress_observer(kafka: KafkaSettings, topic: str | None = None):
    """A function of a query progress (``query.lastProgress``) that updates the input rate, the
    phase times, the memory and the per-partition lag. The job calls it from its own loop after
    each micro-batch: a Python ``StreamingQueryListener`` would be called back by the JVM, also
    while this process is leaving, and print py4j stack traces then."""
    from confluent_kafka import KafkaException, TopicPartition

    from cinerec.platform.kafka import new_consumer

    topic = topic or kafka.ratings_topic
    consumer = new_consumer(kafka, "cinerec-stream-lag", {"enable.auto.commit": False})

    def observe(progress: dict, record_ts: list[int] | None = None) -> dict:
        try:
            partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in partitions}
        except KafkaException:
            ends = {}                         # the broker is away: the lag gauges keep their last values
        return observe_progress(progress, ends, topic, record_ts)

    return observe

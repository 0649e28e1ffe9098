"""The streaming query: Kafka ratings -> keyed state in Spark -> ``RatingProcessor`` per micro-batch.

    rating_stream (Spark's kafka source: ratings + privacy topics; offsets in the checkpoint)
        ─mapInPandas(keyed_rows)─▶ (key, event | dead letter)      validation against the contract
        ─groupBy(key).transformWithStateInPandas(RatingState)─▶      user / film state in buckets (RocksDB)
        ─foreachBatch─▶ RatingProcessor.process(rows, batch_id)      fold-in, Elasticsearch, DLQ
                        (typed rows: ``state.OUTPUT_SCHEMA``)
Offsets and state are versioned together in the checkpoint; Spark re-runs an uncommitted batch
with the same offsets against the state before it, and the processor writes absolute values
under deterministic ids, so the effect on Elasticsearch is exactly once.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.errors import StreamingQueryException

from cinerec.core.settings import Settings

from .processor import RatingProcessor
from .source import rating_stream
from .state import OUTPUT_SCHEMA
from .stateful import INITIAL_SCHEMA, INPUT_SCHEMA, RatingState, has_state, initial_rows, keyed_rows

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def start(spark, settings: Settings, processor: RatingProcessor, *, catalog: set[int], checkpoint: Path,
          initial_ratings: pd.DataFrame | None = None, available_now: bool = False, on_batch=None):
    """Starts the query and returns it (``query.awaitTermination()`` / ``query.stop()``).

    ``settings``: the Kafka topics, the ``streaming`` section (trigger, batch bound, state layout,
    trending window, lateness) and ``web.first_user_id`` (the first user id of a person with an
    account, ``core.privacy``). ``initial_ratings``: the ratings the model was trained on (user_id,
    movie_id, rating, ts); they seed the state of a new checkpoint. A checkpoint that already has
    state is restarted without them: Spark would otherwise carry them in every micro-batch's plan.
    ``available_now``: process what Kafka holds, then stop. The query reads the ratings topic and
    the privacy topic (consent and erasure)."""
    kafka, stream = settings.kafka, settings.streaming
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
    spark.conf.set("spark.sql.shuffle.partitions", str(stream.state_partitions))
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    spark.conf.set("spark.sql.streaming.stopTimeout", "60s")     # a stalled query is given up, not waited for
    # With the next batch as soon as the last ends (trigger_ms = 0), an idle query asks Kafka for new
    # offsets every pollingDelay: 50 ms keeps that cheap and adds at most 50 ms to a rating's wait.
    spark.conf.set("spark.sql.streaming.pollingDelay", "50ms")
    # Commit the state as a changelog (not a full RocksDB checkpoint) every batch.
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
    # No exact row count of the state (numRowsTotal): tracking it costs a RocksDB read before every write.
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows", "false")
    keyed = (rating_stream(spark, kafka, topics=[kafka.ratings_topic, kafka.privacy_topic],
                           max_offsets_per_trigger=stream.max_offsets_per_trigger)
             .select("key", "value", "topic", "partition", "offset", "timestamp")
             .coalesce(stream.state_partitions)      # one validation task per core, not one per Kafka partition
             .mapInPandas(keyed_rows(catalog, stream.state_buckets, kafka.privacy_topic), INPUT_SCHEMA))
    initial = None
    if initial_ratings is not None and len(initial_ratings) and not has_state(checkpoint):
        initial = (spark.createDataFrame(initial_rows(initial_ratings, stream.state_buckets), INITIAL_SCHEMA)
                   .groupBy("key"))
    rules = RatingState(stream.trending_window_s * 1000, stream.lateness_s * 1000, settings.web.first_user_id)
    state = keyed.groupBy("key").transformWithStateInPandas(rules, OUTPUT_SCHEMA, "Append", "None",
                                                            initialState=initial)

    def process(frame, batch_id: int) -> None:
        report = processor.process(frame.toPandas(), batch_id)    # Arrow: much cheaper than collect() of Rows
        if on_batch:
            on_batch(report)

    writer = (state.writeStream.foreachBatch(process).option("checkpointLocation", str(checkpoint))
              .queryName("cinerec-ratings"))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{stream.trigger_ms} milliseconds")
    return writer.start()


def supervise(start_query: Callable[[], StreamingQuery], stop: threading.Event, *, duration_s: float | None = None,
              before_stop: Callable[[], None] = lambda: None, on_progress: Callable[[dict], None] = lambda p: None,
              max_failures: int = 20, first_delay_s: float = 1.0, max_delay_s: float = 30.0,
              stall_s: float = 300.0, driver_busy: Callable[[], bool] = lambda: False,
              diagnose: Callable[[], str] = lambda: "", restart_when: Callable[[], bool] = lambda: False) -> dict:
    """Runs the query until ``stop`` is set, ``duration_s`` passed or it finishes (availableNow).

    A query that fails (Kafka away longer than its client waits, a JVM error) is started again
    from its checkpoint after a backoff, so nothing is lost and nobody has to step in. Failures in
    a row without a committed batch in between are counted: after ``max_failures`` of them the
    last error is raised (a fault that restarting does not cure). ``before_stop`` runs before a
    running query is stopped; ``on_progress`` gets each new ``query.lastProgress``. Returns a summary.

    A query can also hang instead of failing: when a Spark thread dies of an ``Error`` (e.g. the
    transformWithState state server on a full disk), its task waits forever. A micro-batch that
    has run for ``stall_s`` while the driver is not in its own part of it (``driver_busy()``: the
    driver may legitimately wait out an Elasticsearch outage) is a stall: the query is stopped and
    restarted like a failed one, with ``diagnose()`` (e.g. the checkpoint's disk is full) as the reason.

    ``restart_when()``, asked after each batch: True stops the query between two batches and starts it
    again at once (not a failure): a query whose plan carries the training ratings that seeded a new
    checkpoint drops them once that first batch committed (planning them costs every batch ~0.1 s)."""
    deadline = time.monotonic() + duration_s if duration_s else None
    failures, restarts, delay = 0, 0, first_delay_s
    while True:
        query = start_query()
        seen = query.lastProgress["batchId"] if query.lastProgress else -1
        trigger_since, stalled = None, None
        while query.isActive and not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                query.awaitTermination(0.2)  # type: ignore[arg-type]  # pyspark annotates int; takes float seconds
            except StreamingQueryException:
                break                                    # failed: handled below, from query.exception()
            progress = query.lastProgress
            if progress and progress["batchId"] != seen:
                missed = progress["batchId"] - seen > 1     # several batches since the last look: report each
                for each in ([p for p in query.recentProgress if p["batchId"] > seen] if missed else [progress]):
                    on_progress(each)
                seen, failures, delay = progress["batchId"], 0, first_delay_s      # progress: not stuck
                trigger_since = None
                if restart_when():
                    break
            busy = query.isActive and query.status["isTriggerActive"] and not driver_busy()
            trigger_since = (trigger_since or time.monotonic()) if busy else None
            if trigger_since is not None and time.monotonic() - trigger_since > stall_s:
                stalled = f"a micro-batch stalled inside Spark for {stall_s:g} s" + (f": {diagnose()}" if diagnose()
                                                                                       else "")
                break
        if query.isActive and stalled is None:
            restarting = not stop.is_set() and (deadline is None or time.monotonic() < deadline)
            if not restarting:
                before_stop()                            # asked to stop, or --duration reached
            _between_triggers(query)
            query.stop()
            if restarting:
                continue                                 # restart_when(): started again at once
            return {"restarts": restarts}
        if stalled is not None:
            _stop_quietly(query)
        error = stalled or query.exception()
        if error is None:
            return {"restarts": restarts}
        failures += 1
        if failures > max_failures:
            raise RuntimeError(f"the streaming query failed {failures} times in a row: {_first_line(error)}")
        print(f"stream: the query failed ({_first_line(error)}); restarting from the checkpoint in {delay:g} s",
              file=sys.stderr, flush=True)
        if stop.wait(delay) or (deadline is not None and time.monotonic() >= deadline):
            return {"restarts": restarts}
        restarts, delay = restarts + 1, min(delay * 2, max_delay_s)


def checkpoint_trouble(checkpoint: Path, min_free_bytes: int = 4 << 20) -> str:
    """Why the checkpoint cannot be written, if it cannot: read-only or (nearly) full; else ""."""
    where = checkpoint if checkpoint.exists() else checkpoint.parent
    if not os.access(where, os.W_OK):
        return f"Read-only file system (or no write permission): {checkpoint}"
    if shutil.disk_usage(where).free < min_free_bytes:
        return f"No space left on device: {checkpoint}"
    return ""


def _stop_quietly(query) -> None:
    """Stops a stalled query; Spark may report the cancelled job, or time out waiting for it
    (``spark.sql.streaming.stopTimeout``): either way the batch was not committed and runs again."""
    try:
        query.stop()
    except Exception as err:  # noqa: BLE001 - the next start recovers from the checkpoint
        print(f"stream: the stalled query did not stop cleanly ({_first_line(err)})", file=sys.stderr, flush=True)


def _between_triggers(query, timeout_s: float = 30.0) -> None:
    """Waits (up to ``timeout_s``) for a batch boundary: no micro-batch running, or the one running
    when asked committed (its progress is posted; the next has only begun reading offsets). Batches
    follow each other without a pause while Kafka has records, so the first rarely happens under
    load. Stopping in the middle of a batch's work cancels its Spark job, which Spark and the Python
    workers report with pages of stack traces (the batch itself is safe: it was not committed and
    runs again at the next start)."""
    deadline = time.monotonic() + timeout_s
    running = query.lastProgress["batchId"] if query.lastProgress else -1
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        if query.lastProgress and query.lastProgress["batchId"] > running:
            return
        time.sleep(0.005)


def _first_line(error) -> str:
    """One line for a query's failure: its message, and the innermost cause when Java names one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    first = lines[0][:240] if lines else type(error).__name__
    if "Return Message: Traceback" in first and causes:      # a foreachBatch that raised: py4j quotes its traceback
        return causes[-1][:240]
    return first + (f" (cause: {causes[-1][:240]})" if causes and causes[-1] not in first else "")

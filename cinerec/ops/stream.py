"""The streaming job as a program: ``run(settings)`` sets up and supervises ``job.start``.

It loads the champion from the registry (and, during a canary, the challenger), seeds a new
checkpoint's state with the ratings the champion was trained on, checks the indices, starts the
job's clocks (trending decay, "also watched" refresh) and its /metrics, then runs the query under
``job.supervise`` until it is stopped. ``cinerec stream`` only parses arguments and calls it.
Beyond ``core`` and ``search``, it reads the model registry and the champion's training data
through ``batch`` (the registry, the Spark session, the preprocessed data) — the job itself does not.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from cinerec.core.settings import Settings
from cinerec.core.shutdown import stop_on_signals
from cinerec.platform.elasticsearch import connect
from cinerec.platform.kafka import ensure_topics, new_producer, privacy_book
from cinerec.platform.registry import CHAMPION, Registry
from cinerec.search import canary
from cinerec.search.indices import EVENT_INDICES, add_missing_fields, ensure_event_indices
from cinerec.streaming.job import checkpoint_trouble, start, supervise
from cinerec.streaming.metrics import progress_observer, serve
from cinerec.streaming.processor import Model, RatingProcessor
from cinerec.streaming.source import kafka_jars
from cinerec.streaming.stateful import checkpoint_dir, has_state, stored_users

SERVED_INDICES = ("films", "film_stats", "film_lists", "users", *EVENT_INDICES)


def run(settings: Settings, *, duration_s: float | None = None, available_now: bool = False) -> dict:
    """Runs the job on the champion until SIGINT/SIGTERM, ``duration_s`` or (``available_now``)
    the end of what Kafka holds. Each batch's report is a JSON line on stderr; returns the totals
    {batches, accepted, dead, duplicates, restarts}."""
    from threadpoolctl import threadpool_limits

    from cinerec.batch.training import prepare
    from cinerec.platform.spark import spark_session

    threadpool_limits(1)      # the fold-in solves are rank x rank: BLAS threads would only fight Spark for the cores
    registry = Registry(settings)
    model = champion_model(registry)
    if model is None:
        raise LookupError(f"{registry.name} has no champion: run `cinerec train` and `cinerec promote`")
    ensure_topics(settings.kafka)
    spark = spark_session("cinerec-stream", master=settings.streaming.spark_master,
                          jars=kafka_jars(settings.services))   # before prepare, which may need one
    erased = privacy_book(settings.kafka, settings.web.first_user_id).erased()
    frames, report = prepare(Path(registry.version(CHAMPION).tags["data_path"]), settings, erased)
    es = connect(settings.elasticsearch)
    ensure_event_indices(es)
    for alias in SERVED_INDICES:                # an older version's indices get the new fields
        if not es.indices.exists_alias(name=alias):
            raise LookupError(f"no {alias} index: run `cinerec index` first")
        add_missing_fields(es, alias)
    stream, checkpoint = settings.streaming, checkpoint_dir(settings.services.data_dir)
    processor = RatingProcessor(
        es=es, producer=new_producer(settings.kafka), dlq_topic=settings.kafka.dlq_topic, model=model,
        bayesian_prior=(report["bayesian_prior_count"], report["global_mean"]),
        champion=lambda current: newer_champion(registry, current), check_model_s=stream.model_check_s,
        canary=lambda current: canary_challenger(registry, es, current),
        neighbours_kept=settings.elasticsearch.stored_neighbours,
        all_users=(lambda: stored_users(spark, checkpoint, settings.web.first_user_id)) if stream.refold_all else None,
        trending_window_ms=stream.trending_window_s * 1000)
    stop = threading.Event()
    for seconds, action in ((stream.trending_decay_s, processor.decay_trending),
                            (stream.also_watched_refresh_s, processor.refresh_also_watched)):
        if seconds:
            threading.Thread(target=_every, args=(seconds, action, stop), name=action.__name__, daemon=True).start()
    if stream.metrics_port:
        serve(stream.metrics_port)
    totals = {"batches": 0, "accepted": 0, "dead": 0, "duplicates": 0}
    reports: dict[int, dict] = {}           # the driver's report of a batch, until Spark's progress of it comes
    observe = progress_observer(settings.kafka)

    def counted(report: dict) -> None:
        totals["batches"] += 1
        for key in ("accepted", "dead", "duplicates"):
            totals[key] += report[key]
        reports[report["batch"]] = report

    def reported(progress: dict) -> None:
        """One JSON line per batch: the driver's report with Spark's phases and the state operator's figures."""
        report = reports.pop(progress["batchId"], None)
        figures = observe(progress, report and report.pop("record_ts"))
        if report is not None:
            print(json.dumps({**report, **figures}), file=sys.stderr, flush=True)
        for old in [batch for batch in reports if batch < progress["batchId"]]:
            print(json.dumps(reports.pop(old)), file=sys.stderr, flush=True)      # its progress was not seen

    seeding = [False]          # whether the running query's plan carries the seed of a new checkpoint

    def start_query():
        seeding[0] = not has_state(checkpoint)
        return start(spark, settings, processor, catalog=set(map(int, frames["movies"]["movie_id"])),
                     checkpoint=checkpoint, initial_ratings=frames["ratings"], available_now=available_now,
                     on_batch=counted)

    def before_stop() -> None:
        stop.set()
        processor.stopping.set()                      # a write waiting for Elasticsearch gives up

    print(f"streaming {settings.kafka.ratings_topic} -> Elasticsearch with model v{model.version}"
          + (f"; metrics on :{stream.metrics_port}/metrics" if stream.metrics_port else ""), file=sys.stderr)
    with stop_on_signals(stop):
        try:
            summary = supervise(start_query, stop, duration_s=duration_s, before_stop=before_stop,
                                stall_s=stream.stall_s, driver_busy=lambda: processor.in_batch,
                                diagnose=lambda: checkpoint_trouble(checkpoint),
                                on_progress=reported, restart_when=lambda: seeding[0] and has_state(checkpoint))
        finally:
            before_stop()
            for report in reports.values():                  # batches whose progress came too late to join
                report.pop("record_ts", None)
                print(json.dumps(report), file=sys.stderr, flush=True)
    return {**totals, **summary}


def _every(seconds: float, action, stop: threading.Event) -> None:
    """Runs ``action`` every ``seconds`` until ``stop``; a failure is reported and retried next time."""
    while not stop.wait(seconds):
        try:
            action()
        except Exception as err:  # noqa: BLE001 - a clock must outlive one failed call (e.g. ES restarting)
            print(f"{getattr(action, '__name__', action)} failed: {err}", file=sys.stderr, flush=True)


def newer_champion(registry: Registry, current: str) -> Model | None:
    """The champion when its version is not ``current`` (checked without loading it), else None."""
    version = registry.version(CHAMPION)
    return None if version is None or str(version.version) == current else champion_model(registry)


def champion_model(registry: Registry) -> Model | None:
    """The champion as the job's ``Model`` (None without a champion)."""
    version = registry.version(CHAMPION)
    return None if version is None else registered_model(registry, str(version.version))


def canary_challenger(registry: Registry, es, current: str | None):
    """During a canary: the challenger's ``Model`` when it is not ``current``, True when it is;
    None without a canary."""
    running = canary.running(es)
    if running is None:
        return None
    return True if running["version"] == current else registered_model(registry, running["version"])


def registered_model(registry: Registry, number: str) -> Model:
    """Version ``number`` of the registered model, as the job folds with it."""
    artifact = registry.load(number=number)
    regularization, alpha, half_life_days = artifact.fold_params
    return Model(list(artifact.item_ids), artifact.item_factors, regularization, alpha, number, half_life_days)

"""Batch subcommands: train, evaluate, tune, promote, rollback, report."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from . import services as svc
from ._output import print_json
from .commands import generate_world, world_dir
from batch import report as html_report
from batch.evaluate import evaluate
from batch.indexing import build_indices, with_streamed
from batch.recommenders import MODELS
from batch.registry import CHALLENGER, CHAMPION, Registry, registered_name
from batch.training import heldout_metrics, prepare, train, tune
from core.settings import Settings
from search.client import connect
from search.indices import EVENT_INDICES, add_missing_fields, ensure_event_indices

DEFAULT_MODELS = ("popular", "itemknn-cosine", "itemknn-pearson", "rp3beta", "content", "ease", "ease-session",
                  "als", "als-explicit", "hybrid")


def data_path(settings: Settings, path: Path | None) -> Path:
    """--data PATH, or the synthetic world (generated from settings the first time)."""
    if path is not None:
        return Path(path)
    directory = world_dir(settings)
    if not (directory / "ratings.csv").is_file():
        generate_world(settings).save(directory)
    return directory


def parse_params(pairs: list[str] | None) -> dict:
    """``--param key=value`` pairs; values are parsed as JSON where they can be."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--param takes key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def privacy(settings: Settings):
    """The privacy book (``core.privacy``): whom training, indexing and streaming leave out."""
    from core.privacy import privacy_book

    return privacy_book(settings.kafka, settings.web.first_user_id)


def train_command(settings: Settings, args: argparse.Namespace) -> int:
    path = data_path(settings, args.data)
    frames, report = prepare(path, settings, privacy(settings).untrainable())
    artifact, seconds = train(frames, report, model=args.model, params=parse_params(args.param),
                              config=args.config_file, k=args.k)
    registry = Registry(settings, registered_name(settings, artifact.model))
    registered = registry.register(artifact, data_path=str(path.resolve()), train_seconds=seconds)
    print_json({**registered, "model_name": artifact.model, "params": artifact.params,
                "heldout": artifact.metrics, "full_fit_seconds": round(seconds, 3),
                "fingerprint": artifact.fingerprint, "dropped_in_cleaning": report["dropped"]})
    return 0


def evaluate_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.streaming and args.protocol != "temporal":
        raise ValueError("--streaming replays the later ratings in time order; use it with --protocol temporal")
    if args.param and not args.streaming:
        raise ValueError("--param sets the hyper-parameters of the one model --streaming evaluates; "
                         "other comparisons use each model's TOML")
    frames, _ = prepare(data_path(settings, args.data), settings)
    if args.streaming:
        from streaming.quality import evaluate_streaming

        print_json(evaluate_streaming(frames, k=args.k, model=args.models or "als", params=parse_params(args.param)))
        return 0
    result = evaluate(frames, protocol=args.protocol, k=args.k, models=_models(args.models),
                      progress=lambda name, r: print(f"{name}: ndcg@{args.k}={r['ndcg']:.4f} "
                                                     f"({r['train_seconds']:.1f}s)", file=sys.stderr))
    for model in result["models"].values():
        model.pop("curve")
    print_json(result)
    return 0


def tune_command(settings: Settings, args: argparse.Namespace) -> int:
    frames, report = prepare(data_path(settings, args.data), settings)
    registry = Registry(settings)
    parent = registry.log_trial(f"tune-{args.model}", {"model": args.model}, {},
                                {"fingerprint": report["fingerprint"]})

    def log(point, metrics):
        registry.log_trial(f"trial-{args.model}", point, metrics, parent_run_id=parent)
        folds = " ".join(f"{v:.4f}" for v in metrics.get(f"{args.metric}_per_fold", []))
        print(f"{point}: {args.metric}={metrics[args.metric]:.4f} (folds {folds})", file=sys.stderr)
    result = tune(frames, model=args.model, config=args.config_file, k=args.k, trials=args.trials,
                  metric=args.metric, folds=args.folds, on_trial=log)
    print_json({**result, "mlflow_parent_run": parent})
    return 0


def promote_command(settings: Settings, args: argparse.Namespace) -> int:
    registry = Registry(settings, args.registered_model or "")
    champion, challenger = registry.version(CHAMPION), registry.version(CHALLENGER)
    champion_metrics = None
    if champion and challenger and champion.tags.get("split") != challenger.tags.get("split"):
        # Same held-out data for both: re-evaluate the champion's hyper-parameters on the
        # challenger's data and split.
        frames, _ = prepare(Path(challenger.tags["data_path"]), settings, privacy(settings).untrainable())
        current = registry.load(CHAMPION)
        champion_metrics = heldout_metrics(frames, model=current.model, params=current.params)
    print_json(registry.promote(metric=args.metric, margin=args.margin, champion_metrics=champion_metrics))
    return 0


def index_command(settings: Settings, args: argparse.Namespace) -> int:
    """The champion (or --alias) and its training data into versioned films/users indices."""
    print_json(build_served_indices(settings, args.alias))
    return 0


def build_served_indices(settings: Settings, alias: str, *, swap: bool = True) -> dict:
    """Builds the films, film_lists and users indices of the model behind ``alias`` from its data
    (and what the streaming job has taken since); ``swap``: serve them (a canary's are built without)."""
    registry = Registry(settings)
    version = registry.version(alias)
    if version is None:
        raise LookupError(f"{registry.name} has no {alias}: run `cinerec train` and `cinerec promote`")
    artifact = registry.load(alias)
    book = privacy(settings)
    frames, prepared = prepare(Path(version.tags["data_path"]), settings, book.erased())
    streamed, trending = _streamed(settings)
    if streamed is not None:
        streamed = streamed[~streamed["user_id"].isin(book.erased())]     # erasures the job has not applied yet
        frames, artifact = with_streamed(frames, artifact, streamed,
                                         (prepared["bayesian_prior_count"], prepared["global_mean"]))
    report = build_indices(connect(settings.elasticsearch), frames, artifact, version=version.version,
                           keep=settings.elasticsearch.keep_versions, film_fields=trending,
                           neighbours_kept=settings.elasticsearch.stored_neighbours, privacy=book.document_fields,
                           swap=swap)
    return {"model": registry.name, "alias": alias, "version": int(version.version),
            "streamed_ratings": 0 if streamed is None else len(streamed), **report}


def _streamed(settings: Settings) -> tuple:
    """(ratings the streaming job has taken, {film: trending fields}) from its checkpoint, or
    (None, None) if it never ran."""
    from streaming.stateful import checkpoint_dir, has_state, stored_trending, streamed_ratings

    checkpoint = checkpoint_dir(settings.services.data_dir)
    if not has_state(checkpoint):
        return None, None
    from batch.spark import spark_session
    spark = spark_session("cinerec-index")
    return (streamed_ratings(spark, checkpoint),
            stored_trending(spark, checkpoint, settings.streaming.trending_window_s * 1000))


def _every(seconds: float, action, stop: threading.Event) -> None:
    """Runs ``action`` every ``seconds`` until ``stop``; a failure is reported and retried next time."""
    while not stop.wait(seconds):
        try:
            action()
        except Exception as err:  # noqa: BLE001 - a clock must outlive one failed call (e.g. ES restarting)
            print(f"{getattr(action, '__name__', action)} failed: {err}", file=sys.stderr, flush=True)


def serve_command(settings: Settings, args: argparse.Namespace) -> int:
    from .serve import serve
    serve(settings, duration_s=args.duration)
    return 0


def bench_api_command(settings: Settings, args: argparse.Namespace) -> int:
    """Real titles and user ids from the indices, then GET /recommendations?title= and
    GET /users/<id>/recommendations alternately at --rps against a running `cinerec serve`."""
    from urllib.parse import quote

    from .serve import bench_api

    es = connect(settings.elasticsearch)
    films = es.search(index="films", size=200, query={"range": {"like_count": {"gte": 1}}},
                      sort=[{"rating_count": "desc"}], source=["title", "year"])["hits"]["hits"]
    users = es.search(index="users", size=200, source=["user_id"])["hits"]["hits"]
    if not films or not users:
        raise LookupError("the films/users indices are empty: run `cinerec index` first")
    titles = [f"{h['_source']['title']} ({h['_source']['year']})" if h["_source"].get("year")
              else h["_source"]["title"] for h in films]
    paths = [p for t, u in zip(titles, users)
             for p in (f"/recommendations?title={quote(t)}", f"/users/{u['_source']['user_id']}/recommendations")]
    url = args.url or f"http://{settings.api.host}:{settings.api.port}"
    print_json({"benchmark": "api", "url": url, "duration_s": args.duration,
                **bench_api(url, paths, duration_s=args.duration, rps=args.rps)})
    return 0


def bench_wrk_command(settings: Settings, args: argparse.Namespace) -> int:
    """Each route under wrk against a running `cinerec serve`; JSON with the floor ratio."""
    from .bench_wrk import bench_routes, route_paths

    url = args.url or f"http://{settings.api.host}:{settings.api.port}"
    routes = route_paths(connect(settings.elasticsearch))
    print_json({"benchmark": "wrk", "url": url, "duration_s": args.duration, "connections": args.connections,
                "threads": args.threads, "routes": bench_routes(url, routes, duration_s=args.duration,
                                                                connections=args.connections, threads=args.threads)})
    return 0


def stream_command(settings: Settings, args: argparse.Namespace) -> int:
    """The streaming job on the champion: Kafka ratings -> keyed state, fold-in -> Elasticsearch."""
    from confluent_kafka import Producer
    from threadpoolctl import threadpool_limits

    from batch.spark import spark_session
    from streaming.job import checkpoint_trouble, start, supervise
    from streaming.metrics import progress_observer, serve
    from streaming.processor import RatingProcessor
    from streaming.source import kafka_jars
    from streaming.stateful import checkpoint_dir, stored_users

    # The fold-in solves are rank x rank: BLAS threads would only fight Spark for the cores.
    threadpool_limits(1)
    registry = Registry(settings)
    model = champion_model(registry)
    if model is None:
        raise LookupError(f"{registry.name} has no champion: run `cinerec train` and `cinerec promote`")
    data = Path(registry.version(CHAMPION).tags["data_path"])
    svc.ensure_topics(settings.kafka)
    spark = spark_session("cinerec-stream", jars=kafka_jars(settings.services))   # before prepare, which may need one
    frames, report = prepare(data, settings, privacy(settings).erased())   # seeds a new checkpoint's state
    stream = settings.streaming
    es = connect(settings.elasticsearch)
    ensure_event_indices(es)
    for alias in ("films", "film_lists", "users", *EVENT_INDICES):  # an older version's indices get new fields
        if not es.indices.exists_alias(name=alias):
            raise LookupError(f"no {alias} index: run `cinerec index` first")
        add_missing_fields(es, alias)
    checkpoint = checkpoint_dir(settings.services.data_dir)
    processor = RatingProcessor(
        es=es, producer=Producer(settings.kafka.client_config()), dlq_topic=settings.kafka.dlq_topic, model=model,
        bayesian_prior=(report["bayesian_prior_count"], report["global_mean"]),
        champion=lambda current: newer_champion(registry, current), check_model_s=stream.model_check_s,
        canary=lambda current: canary_challenger(registry, es, current),
        neighbours_kept=settings.elasticsearch.stored_neighbours,
        all_users=(lambda: stored_users(spark, checkpoint, settings.web.first_user_id)) if stream.refold_all else None,
        trending_window_ms=stream.trending_window_s * 1000)
    stop = threading.Event()
    if stream.trending_decay_s:
        threading.Thread(target=_every, args=(stream.trending_decay_s, processor.decay_trending, stop),
                         name="trending-decay", daemon=True).start()
    if stream.also_watched_refresh_s:
        threading.Thread(target=_every, args=(stream.also_watched_refresh_s, processor.refresh_also_watched, stop),
                         name="also-watched", daemon=True).start()
    if stream.metrics_port:
        serve(stream.metrics_port)
    totals = {"batches": 0, "accepted": 0, "dead": 0, "duplicates": 0}

    def on_batch(report: dict) -> None:
        totals["batches"] += 1
        for key in ("accepted", "dead", "duplicates"):
            totals[key] += report[key]
        print(json.dumps(report), file=sys.stderr, flush=True)

    def start_query():
        return start(spark, settings.kafka, processor, catalog=set(map(int, frames["movies"]["movie_id"])),
                     initial_ratings=frames["ratings"], checkpoint=checkpoint, trigger_ms=stream.trigger_ms,
                     max_offsets_per_trigger=stream.max_offsets_per_trigger, available_now=args.available_now,
                     trending_window_ms=stream.trending_window_s * 1000, lateness_ms=stream.lateness_s * 1000,
                     state_buckets=stream.state_buckets, state_partitions=stream.state_partitions,
                     first_person_id=settings.web.first_user_id, on_batch=on_batch)

    print(f"streaming {settings.kafka.ratings_topic} -> Elasticsearch with model v{model.version}"
          + (f"; metrics on :{stream.metrics_port}/metrics" if stream.metrics_port else ""), file=sys.stderr)

    def before_stop() -> None:
        stop.set()
        processor.stopping.set()                      # a write waiting for Elasticsearch gives up

    with stop_on_signals(stop):
        try:
            summary = supervise(start_query, stop, duration_s=args.duration, before_stop=before_stop,
                                stall_s=stream.stall_s, driver_busy=lambda: processor.in_batch,
                                diagnose=lambda: checkpoint_trouble(checkpoint),
                                on_progress=progress_observer(settings.kafka))
        finally:
            before_stop()
    print(f"stream: stopped after {totals['batches']} batches ({totals['accepted']} accepted, "
          f"{totals['dead']} dead letters, {totals['duplicates']} duplicates, {summary['restarts']} restarts)",
          file=sys.stderr)
    return 0


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """SIGINT and SIGTERM set ``stop`` (the job then stops between calls into Spark) instead of
    raising into whatever the main thread is doing; restored afterwards."""
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def newer_champion(registry: Registry, current: str):
    """The champion when its version is not ``current`` (checked without loading it), else None."""
    version = registry.version(CHAMPION)
    return None if version is None or str(version.version) == current else champion_model(registry)


def champion_model(registry: Registry):
    """The champion as the streaming job's ``Model`` (None without a champion)."""
    version = registry.version(CHAMPION)
    return None if version is None else _streaming_model(registry, str(version.version))


def canary_challenger(registry: Registry, es, current: str | None):
    """For the streaming job during a canary: the challenger's ``Model`` when it is not ``current``,
    True when it is, None without a canary."""
    from search import canary

    running = canary.running(es)
    if running is None:
        return None
    return True if running["version"] == current else _streaming_model(registry, running["version"])


def _streaming_model(registry: Registry, number: str):
    from streaming.processor import Model

    artifact = registry.load(number=number)
    return Model(list(artifact.item_ids), artifact.item_factors, float(artifact.params["regularization"]),
                 float(artifact.params["alpha"]), number)


def rollback_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(Registry(settings, args.registered_model or "").rollback())
    return 0


def report_command(settings: Settings, args: argparse.Namespace) -> int:
    path = data_path(settings, args.data)
    frames, report = prepare(path, settings)
    result = evaluate(frames, protocol=args.protocol, k=args.k, models=_models(args.models),
                      progress=lambda name, r: print(f"{name}: done", file=sys.stderr))
    out = args.out or Path(settings.services.data_dir) / "reports" / f"{report['fingerprint']}.html"
    html_report.write(result, out, title="Cinerec: comparing recommenders",
                      data_summary={"path": str(path), "layout": report["layout"],
                                    "ratings": report["rows"]["clean"], "fingerprint": report["fingerprint"]})
    print_json({"report": str(out), "models": {n: round(r["ndcg"], 4) for n, r in result["models"].items()}})
    return 0


def _models(names: str | None) -> list[str]:
    chosen = [n.strip() for n in names.split(",")] if names else list(DEFAULT_MODELS)
    unknown = [n for n in chosen if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return chosen


def add_parsers(sub) -> None:
    def data_option(p):
        p.add_argument("--data", type=Path, help="MovieLens directory (default: the synthetic world)")
        p.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")

    train_p = sub.add_parser("train", help="train a model, log it to MLflow, register a challenger")
    data_option(train_p)
    train_p.add_argument("--model", default="als", choices=("als", "als-explicit"))
    train_p.add_argument("--config", dest="config_file", type=Path,
                         help="model TOML (default config/models/<model>.toml)")
    train_p.add_argument("--param", action="append", metavar="KEY=VALUE",
                         help="override a hyper-parameter, e.g. --param trainer=spark")
    train_p.set_defaults(run=train_command)

    eval_p = sub.add_parser("evaluate", help="compare recommenders on the evaluation protocol (JSON)")
    data_option(eval_p)
    eval_p.add_argument("--protocol", choices=("stratified", "temporal"), default="stratified")
    eval_p.add_argument("--models", help=f"comma-separated (default: {','.join(DEFAULT_MODELS)})")
    eval_p.add_argument("--json", action="store_true", help="JSON output (the only format; accepted for scripts)")
    eval_p.add_argument("--streaming", action="store_true",
                        help="temporal only: train on the first 80%% by time, fold the rest in as the streaming "
                             "job does, and compare with a full retrain (--models: one ALS model, default als)")
    eval_p.add_argument("--param", action="append", metavar="KEY=VALUE",
                        help="with --streaming: override a hyper-parameter of that model, e.g. --param rank=64")
    eval_p.set_defaults(run=evaluate_command)

    tune_p = sub.add_parser("tune", help="search the TOML search space on a validation split")
    data_option(tune_p)
    tune_p.add_argument("--model", default="als", choices=sorted(MODELS))
    tune_p.add_argument("--config", dest="config_file", type=Path)
    tune_p.add_argument("--trials", type=int, help="random sample of the grid (default: all of it)")
    tune_p.add_argument("--folds", type=int, default=3,
                        help="validation splits each point is scored on; points rank by the mean (default 3)")
    tune_p.add_argument("--metric", default="ndcg", choices=("ndcg", "precision", "recall", "map", "rmse", "mae"),
                        help="what to optimise (rmse and mae: lower is better; for als-explicit)")
    tune_p.set_defaults(run=tune_command)

    promote_p = sub.add_parser("promote", help="challenger -> champion, only if it beats the champion")
    promote_p.add_argument("--metric", help="default: setting mlflow.promotion_metric")
    promote_p.add_argument("--margin", type=float, help="default: setting mlflow.promotion_margin")
    promote_p.add_argument("--registered-model", help="default: setting mlflow.registered_model")
    promote_p.set_defaults(run=promote_command)

    index_p = sub.add_parser("index", help="build films/users indices from the champion and swap aliases")
    index_p.add_argument("--alias", default=CHAMPION, choices=(CHAMPION, CHALLENGER))
    index_p.set_defaults(run=index_command)

    stream_p = sub.add_parser("stream", help="run the streaming job (Kafka -> fold-in -> Elasticsearch)")
    stream_p.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    stream_p.add_argument("--available-now", action="store_true",
                          help="process what is in Kafka now, then stop")
    stream_p.set_defaults(run=stream_command)

    serve_p = sub.add_parser("serve", help="run the API under gunicorn (setting api.*)")
    serve_p.add_argument("--duration", type=float, help="stop after this many seconds (default: SIGINT/SIGTERM)")
    serve_p.set_defaults(run=serve_command)

    rollback_p = sub.add_parser("rollback", help="point champion back to the version it replaced")
    rollback_p.add_argument("--registered-model", help="default: setting mlflow.registered_model")
    rollback_p.set_defaults(run=rollback_command)

    report_p = sub.add_parser("report", help="HTML page comparing the approaches")
    data_option(report_p)
    report_p.add_argument("--protocol", choices=("stratified", "temporal"), default="stratified")
    report_p.add_argument("--models", help="comma-separated (default: all)")
    report_p.add_argument("--out", type=Path, help="HTML file (default var/reports/<fingerprint>.html)")
    report_p.set_defaults(run=report_command)

"""The subcommands: each reads its arguments, calls the component that does the work, prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import services as svc
from ._output import print_json, progress_bar
from .events import count_events
from batch import integrity, movielens, store
from batch.download import DownloadError, download
from core.privacy import privacy_book
from core.settings import Settings
from simulator.producer import publish, simulated_messages
from simulator.replay import replay_messages, time_cut
from simulator.world import TASTES_FILE, Tastes, World, generate

FAILURES = (movielens.DataError, DownloadError, FileNotFoundError, ValueError, RuntimeError)


def config_show(settings: Settings, args: argparse.Namespace) -> int:
    values = settings.as_dict(mask_secrets=True)
    if args.json:
        print_json(values)
        return 0
    for section, keys in values.items():
        print(f"[{section}]")
        for key, value in keys.items():
            print(f"{key} = {value!r}" if not isinstance(value, Path) else f"{key} = '{value}'")
        print()
    return 0


def services_command(settings: Settings, args: argparse.Namespace) -> int:
    action = args.action
    if action == "up":
        report = svc.up(settings)
        print(f"kafka          {settings.kafka.bootstrap_servers}  topics {report['topics']}",
              file=sys.stderr)
        print(f"elasticsearch  {settings.elasticsearch.url}  ({report['elasticsearch']['status']})",
              file=sys.stderr)
    elif action == "down":
        report = svc.down(settings)
    else:
        report = svc.status(settings)
    print_json(report)
    healthy = action != "status" or all(report[s]["healthy"] for s in ("kafka", "elasticsearch"))
    return 0 if healthy else 3


def data_load(settings: Settings, args: argparse.Namespace) -> int:
    dataset = movielens.load(args.path)
    name = args.name or Path(args.path).resolve().name
    print_json(store.save(dataset, Path(settings.services.data_dir) / "datasets" / name,
                          source=args.path))
    return 0


def cut_dir(settings: Settings, path: Path, fraction: float) -> Path:
    return Path(settings.services.data_dir) / "datasets" / f"{Path(path).resolve().name}-first{round(fraction * 100)}"


def data_cut(settings: Settings, args: argparse.Namespace) -> int:
    dataset = movielens.load(args.path)
    before, after = time_cut(dataset.ratings, args.fraction)
    out = args.out or cut_dir(settings, args.path, args.fraction)
    dataset.ratings = before
    movielens.write_csv(dataset, out)
    print_json({"path": str(out), "fraction": args.fraction, "ratings_before": len(before),
                "ratings_after": len(after), "cut_ts": int(after["ts"].min()) if len(after) else None})
    return 0


def data_check(settings: Settings, args: argparse.Namespace) -> int:
    report = integrity.check(args.path)
    if args.json:
        print_json(report)
    else:
        counts = ", ".join(f"{v} {k}" for k, v in report["counts"].items())
        print(f"{report['path']}: layout {report['layout']}, {counts}")
        span = report["time_span"]
        print(f"time span {span['first']} .. {span['last']} ({span['days']} days)")
        for name, info in report["files"].items():
            print(f"  {info['sha256']}  {name}")
        for problem in report["problems"]:
            print(f"{problem['severity']}: {problem['check']}: {problem['count']} rows, "
                  f"e.g. {problem['examples'][:2]}")
        print(f"{report['errors']} errors, {report['warnings']} warnings")
    return 1 if report["errors"] else 0


def data_download(settings: Settings, args: argparse.Namespace) -> int:
    destination = args.dest or Path(settings.services.data_dir) / "downloads"
    print_json(download(args.name, destination, url=args.url))
    return 0


def data_generate(settings: Settings, args: argparse.Namespace) -> int:
    world = generate_world(settings, seed=args.seed, users=args.users, movies=args.movies)
    directory = world.save(args.out or world_dir(settings))
    print_json({"path": str(directory), "seed": world.seed, "users": len(world.users),
                "movies": len(world.movies), "ratings": len(world.ratings), "tags": len(world.tags)})
    return 0


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    if args.duration is None and args.count is None:
        raise ValueError("give --duration SECONDS or --count N")
    if args.closed_loop:
        return simulate_closed_loop(settings, args)
    if not 0.0 <= args.malformed <= 1.0:
        raise ValueError(f"--malformed must be a fraction between 0 and 1, got {args.malformed}")
    svc.require_kafka(settings.kafka)
    tastes = load_or_generate_tastes(settings)
    rate = _pick(args.rate, settings.simulator.rate)
    world = settings.simulator
    messages = simulated_messages(tastes.drifted(args.drift, _pick(args.seed, world.seed)),
                                  seed=_pick(args.seed, world.seed), rate=rate, users=args.users,
                                  malformed=args.malformed, count=args.count,
                                  sessions=(world.mean_ratings_per_user, world.min_ratings_per_user))
    topic = args.topic or settings.kafka.ratings_topic
    with progress_bar(args.count, f"simulate -> {topic}") as bar:
        summary = publish(settings.kafka, messages, topic=topic, duration_s=args.duration,
                          progress=bar.update)
    print_json({"target_rate": rate, "drift": args.drift, **summary})
    return 0 if summary["failed"] == 0 else 1


def simulate_closed_loop(settings: Settings, args: argparse.Namespace) -> int:
    """Users who ask the API, see, click and rate (``simulator/closed_loop.py``); --count = requests."""
    from simulator.closed_loop import ClosedLoop

    svc.require_kafka(settings.kafka)
    loop = ClosedLoop(load_or_generate_tastes(settings), settings.kafka,
                      args.api_url or f"http://{settings.api.host}:{settings.api.port}",
                      seed=_pick(args.seed, settings.simulator.seed), k=args.k, drift=args.drift, users=args.users)
    rate = _pick(args.rate, settings.simulator.rate)
    with progress_bar(args.count, "closed loop") as bar:
        summary = loop.run(rate=rate, duration_s=args.duration, steps=args.count, progress=bar.update)
    print_json({"target_rate": rate, "drift": args.drift, **summary})
    return 0 if summary["unacknowledged"] == 0 else 1


def replay(settings: Settings, args: argparse.Namespace) -> int:
    svc.require_kafka(settings.kafka)
    dataset = movielens.load(args.path)
    erased = privacy_book(settings.kafka, settings.web.first_user_id).erased()     # never published again
    ratings = dataset.ratings[~dataset.ratings["user_id"].isin(erased)]
    messages, skipped = replay_messages(ratings, speed=args.speed, rate=args.rate, after=args.after,
                                        limit=args.limit)
    topic = args.topic or settings.kafka.ratings_topic
    remaining = len(time_cut(ratings, args.after)[1]) if args.after else len(ratings)
    total = min(remaining - skipped, args.limit or remaining)
    with progress_bar(total, f"replay -> {topic}") as bar:
        summary = publish(settings.kafka, messages, topic=topic, progress=bar.update)
    print_json({"layout": dataset.layout, "speed": args.speed, "rate": args.rate, "after": args.after,
                "skipped_incomplete_rows": skipped, "skipped_erased_users": len(dataset.ratings) - len(ratings),
                **summary})
    return 0 if summary["failed"] == 0 else 1


def events_count(settings: Settings, args: argparse.Namespace) -> int:
    svc.require_kafka(settings.kafka)
    print_json(count_events(settings.kafka, args.topic or settings.kafka.ratings_topic))
    return 0


def bench_produce(settings: Settings, args: argparse.Namespace) -> int:
    """Full-speed publishing to a scratch topic (deleted afterwards) for ``--duration`` seconds."""
    svc.require_kafka(settings.kafka)
    topic = f"{settings.kafka.ratings_topic}.bench"
    bench_kafka = settings.replace(kafka__ratings_topic=topic, kafka__dlq_topic=f"{topic}.dlq").kafka
    svc.ensure_topics(bench_kafka)
    try:
        tastes = load_or_generate_tastes(settings)
        messages = simulated_messages(tastes, seed=settings.simulator.seed, rate=0.0)
        summary = publish(settings.kafka, messages, topic=topic, duration_s=args.duration)
    finally:
        svc.delete_topics(bench_kafka, [topic, f"{topic}.dlq"])
    print_json({"benchmark": "produce", "events_per_s": summary["achieved_rate"],
                "acknowledged": summary["sent"], "failed": summary["failed"],
                "seconds": summary["duration_s"], "acks": settings.kafka.acks,
                "partitions": summary["partitions"]})
    return 0 if summary["failed"] == 0 else 1


# -- helpers ----------------------------------------------------------------------------------

def world_dir(settings: Settings) -> Path:
    return Path(settings.services.data_dir) / "world"


def load_or_generate_tastes(settings: Settings) -> Tastes:
    """The synthetic world's hidden tastes, generating the world from settings the first time."""
    path = world_dir(settings) / TASTES_FILE
    if not path.is_file():
        generate_world(settings).save(world_dir(settings))
    return Tastes.load(path)


def generate_world(settings: Settings, *, seed: int | None = None, users: int | None = None,
                   movies: int | None = None) -> World:
    sim = settings.simulator
    return generate(seed=_pick(seed, sim.seed), users=_pick(users, sim.users),
                    movies=_pick(movies, sim.movies), mean_ratings_per_user=sim.mean_ratings_per_user,
                    min_ratings_per_user=sim.min_ratings_per_user, latent_dim=sim.latent_dim)


def _pick(value, default):
    return default if value is None else value

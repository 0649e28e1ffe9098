"""Commands on data and events: `cinerec data …`, `simulate`, `replay`, `events count`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cinerec.batch import integrity, movielens, store
from cinerec.batch.download import download
from cinerec.batch.store import cut_dir
from cinerec.core.settings import Settings
from cinerec.platform.kafka import count_events, privacy_book, require_kafka
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.replay import replay_messages, time_cut
from cinerec.simulator.world import load_or_generate_tastes, world_dir, world_of

from ._output import env_help, print_json, progress_bar


def data_load(settings: Settings, args: argparse.Namespace) -> int:
    dataset = movielens.load(args.path)
    name = args.name or Path(args.path).resolve().name
    print_json(store.save(dataset, Path(settings.services.data_dir) / "datasets" / name,
                          source=args.path))
    return 0


def data_cut(settings: Settings, args: argparse.Namespace) -> int:
    dataset = movielens.load(args.path)
    before, after = time_cut(dataset.ratings, args.fraction)
    out = args.out or cut_dir(settings.services.data_dir, args.path, args.fraction)
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
    world = world_of(settings, seed=args.seed, users=args.users, movies=args.movies, history_s=args.history_seconds)
    directory = world.save(args.out or world_dir(settings))
    print_json({"path": str(directory), "seed": world.seed, "users": len(world.users),
                "movies": len(world.movies), "ratings": len(world.ratings), "tags": len(world.tags)})
    return 0


def simulate_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.duration is None and args.count is None:
        raise ValueError("give --duration SECONDS or --count N")
    if args.closed_loop:
        return simulate_closed_loop(settings, args)
    if not 0.0 <= args.malformed <= 1.0:
        raise ValueError(f"--malformed must be a fraction between 0 and 1, got {args.malformed}")
    require_kafka(settings.kafka)
    tastes = load_or_generate_tastes(settings)
    rate = settings.simulator.rate if args.rate is None else args.rate
    world = settings.simulator
    seed = world.seed if args.seed is None else args.seed
    messages = simulated_messages(tastes.drifted(args.drift, seed), seed=seed, rate=rate, users=args.users,
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
    from cinerec.simulator.closed_loop import ClosedLoop

    require_kafka(settings.kafka)
    loop = ClosedLoop(load_or_generate_tastes(settings), settings.kafka,
                      args.api_url or f"http://{settings.api.host}:{settings.api.port}",
                      seed=settings.simulator.seed if args.seed is None else args.seed, k=args.k, drift=args.drift,
                      users=args.users)
    rate = settings.simulator.rate if args.rate is None else args.rate
    with progress_bar(args.count, "closed loop") as bar:
        summary = loop.run(rate=rate, duration_s=args.duration, steps=args.count, progress=bar.update)
    print_json({"target_rate": rate, "drift": args.drift, **summary})
    return 0 if summary["unacknowledged"] == 0 else 1


def replay_command(settings: Settings, args: argparse.Namespace) -> int:
    require_kafka(settings.kafka)
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
    require_kafka(settings.kafka)
    print_json(count_events(settings.kafka, args.topic or settings.kafka.ratings_topic))
    return 0


def add_parsers(sub) -> None:
    data = sub.add_parser("data", help="load, check, download or generate datasets")
    data_sub = data.add_subparsers(dest="action", required=True)
    load = data_sub.add_parser("load", help="read a MovieLens directory (any layout) into the data dir")
    load.add_argument("path", type=Path)
    load.add_argument("--name", help="dataset name under <data_dir>/datasets (default: folder name)")
    load.set_defaults(run=data_load)
    check = data_sub.add_parser("check", help="integrity report; exits 1 when it finds errors")
    check.add_argument("path", type=Path)
    check.add_argument("--json", action="store_true", help="print the full report as JSON")
    check.set_defaults(run=data_check)
    download = data_sub.add_parser("download", help="fetch a MovieLens release and verify checksums")
    download.add_argument("name", help="e.g. movielens-small")
    download.add_argument("--dest", type=Path, help="target directory (default: <data_dir>/downloads)")
    download.add_argument("--url", help="mirror URL of the same zip archive")
    download.set_defaults(run=data_download)
    cut = data_sub.add_parser("cut", help="the first part of a MovieLens history by time, as a dataset to "
                                          "train on (replay the rest with `replay --after`)")
    cut.add_argument("path", type=Path)
    cut.add_argument("--fraction", type=float, default=0.8, help="share of the ratings by time (default 0.8)")
    cut.add_argument("--out", type=Path, help="directory (default: <data_dir>/datasets/<name>-first<pct>)")
    cut.set_defaults(run=data_cut)
    generate = data_sub.add_parser("generate", help="create the seeded synthetic world")
    generate.add_argument("--out", type=Path, help="directory (default: <data_dir>/world)")
    generate.add_argument("--seed", type=int, help=env_help("seed", "simulator", "seed"))
    generate.add_argument("--users", type=int, help=env_help("users", "simulator", "users"))
    generate.add_argument("--movies", type=int, help=env_help("films", "simulator", "movies"))
    generate.add_argument("--history-seconds", type=float, metavar="S",
                          help="date the history in the S seconds before now (default: 2020-01 to 2021-07); "
                               "`demo --loop` puts it on its feed's clock")
    generate.set_defaults(run=data_generate)

    simulate = sub.add_parser("simulate", help="publish synthetic rating events to Kafka")
    simulate.add_argument("--rate", type=float,
                          help=env_help("events per second, 0 = as fast as possible", "simulator", "rate"))
    simulate.add_argument("--duration", type=float, help="seconds to run (default: until --count)")
    simulate.add_argument("--count", type=int, help="stop after this many events")
    simulate.add_argument("--users", type=int, help="only the first N users of the world act")
    simulate.add_argument("--seed", type=int, help=env_help("seed", "simulator", "seed"))
    simulate.add_argument("--malformed", type=float, default=0.0, metavar="F",
                          help="fraction of deliberately bad events, 0..1 (default 0)")
    simulate.add_argument("--topic", help=env_help("target topic", "kafka", "ratings_topic"))
    simulate.add_argument("--closed-loop", action="store_true",
                          help="users ask the API for recommendations, then click and rate what suits their "
                               "hidden tastes (impressions and clicks on kafka.feedback_topic); --rate: requests/s")
    simulate.add_argument("--api-url", help="with --closed-loop: API base URL (default http://<api.host>:<api.port>)")
    simulate.add_argument("--k", type=int, default=10, help="with --closed-loop: films per list (default 10)")
    simulate.add_argument("--drift", type=float, default=0.0, metavar="F",
                          help="turn the tastes of a fraction F of the users upside down (the same users with "
                               "and without --closed-loop, for one --seed)")
    simulate.set_defaults(run=simulate_command)

    replay = sub.add_parser("replay", help="publish MovieLens ratings in event-time order")
    replay.add_argument("path", type=Path)
    replay.add_argument("--speed", type=float, default=0.0,
                        help="event-time seconds per wall second, 0 = as fast as possible")
    replay.add_argument("--rate", type=float, default=0.0,
                        help="a steady number of events per second instead of --speed (0: use --speed)")
    replay.add_argument("--after", type=float, default=0.0, metavar="F",
                        help="only the ratings after the first fraction F by time (see `data cut`)")
    replay.add_argument("--limit", type=int, help="only the first N ratings by time")
    replay.add_argument("--topic", help=env_help("target topic", "kafka", "ratings_topic"))
    replay.set_defaults(run=replay_command)

    events = sub.add_parser("events", help="inspect events on a topic")
    events_sub = events.add_subparsers(dest="action", required=True)
    count = events_sub.add_parser("count", help="read a topic back: counts per partition and validity")
    count.add_argument("--topic", help=env_help("topic", "kafka", "ratings_topic"))
    count.set_defaults(run=events_count)

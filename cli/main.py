"""`cinerec`: the one entry point. Loads settings once, dispatches, maps errors to exit codes.

Exit codes: 0 ok, 1 failed (bad data, integrity errors, download), 2 bad usage or settings,
3 a service is unavailable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from . import batch_commands, canary, commands, kibana, live, privacy
from .services import ServiceError
from batch.registry import PromotionRefused
from core.settings import Settings, SettingsError, env_var, load_settings

EXIT_FAILED, EXIT_USAGE, EXIT_SERVICE, EXIT_INTERRUPTED = 1, 2, 3, 130


def env_help(text: str, section: str, key: str) -> str:
    return f"{text} (default: setting {section}.{key}, env {env_var(section, key)})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cinerec", description="Cinerec: a real-time streaming movie recommender.",
        epilog="Every setting in config/cinerec.toml can be overridden with an environment "
               "variable CINEREC_<SECTION>__<KEY>; `cinerec config show` prints the effective "
               "values.")
    parser.add_argument("--config", type=Path, metavar="TOML",
                        help="settings file (env CINEREC_CONFIG; default config/cinerec.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser("config", help="show the effective settings")
    config_sub = config.add_subparsers(dest="action", required=True)
    show = config_sub.add_parser("show", help="print settings, secrets masked")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML-like text")
    show.set_defaults(run=commands.config_show)

    services = sub.add_parser("services", help="start, stop or check Kafka and Elasticsearch")
    services.add_argument("action", choices=("up", "down", "status"))
    services.set_defaults(run=commands.services_command)

    data = sub.add_parser("data", help="load, check, download or generate datasets")
    data_sub = data.add_subparsers(dest="action", required=True)
    load = data_sub.add_parser("load", help="read a MovieLens directory (any layout) into the data dir")
    load.add_argument("path", type=Path)
    load.add_argument("--name", help="dataset name under <data_dir>/datasets (default: folder name)")
    load.set_defaults(run=commands.data_load)
    check = data_sub.add_parser("check", help="integrity report; exits 1 when it finds errors")
    check.add_argument("path", type=Path)
    check.add_argument("--json", action="store_true", help="print the full report as JSON")
    check.set_defaults(run=commands.data_check)
    download = data_sub.add_parser("download", help="fetch a MovieLens release and verify checksums")
    download.add_argument("name", help="e.g. movielens-small")
    download.add_argument("--dest", type=Path, help="target directory (default: <data_dir>/downloads)")
    download.add_argument("--url", help="mirror URL of the same zip archive")
    download.set_defaults(run=commands.data_download)
    cut = data_sub.add_parser("cut", help="the first part of a MovieLens history by time, as a dataset to "
                                          "train on (replay the rest with `replay --after`)")
    cut.add_argument("path", type=Path)
    cut.add_argument("--fraction", type=float, default=0.8, help="share of the ratings by time (default 0.8)")
    cut.add_argument("--out", type=Path, help="directory (default: <data_dir>/datasets/<name>-first<pct>)")
    cut.set_defaults(run=commands.data_cut)
    generate = data_sub.add_parser("generate", help="create the seeded synthetic world")
    generate.add_argument("--out", type=Path, help="directory (default: <data_dir>/world)")
    generate.add_argument("--seed", type=int, help=env_help("seed", "simulator", "seed"))
    generate.add_argument("--users", type=int, help=env_help("users", "simulator", "users"))
    generate.add_argument("--movies", type=int, help=env_help("films", "simulator", "movies"))
    generate.set_defaults(run=commands.data_generate)

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
    simulate.set_defaults(run=commands.simulate)

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
    replay.set_defaults(run=commands.replay)

    events = sub.add_parser("events", help="inspect events on a topic")
    events_sub = events.add_subparsers(dest="action", required=True)
    count = events_sub.add_parser("count", help="read a topic back: counts per partition and validity")
    count.add_argument("--topic", help=env_help("topic", "kafka", "ratings_topic"))
    count.set_defaults(run=commands.events_count)

    bench = sub.add_parser("bench", help="benchmarks that print JSON")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    produce = bench_sub.add_parser("produce", help="events/s acknowledged by the broker at full speed")
    produce.add_argument("--duration", type=float, default=30.0)
    produce.set_defaults(run=commands.bench_produce)
    api = bench_sub.add_parser("api", help="p50/p95/p99 latency of the API at a fixed request rate")
    api.add_argument("--duration", type=float, default=30.0)
    api.add_argument("--rps", type=float, default=200.0, help="requests per second (default 200)")
    api.add_argument("--url", help="API base URL (default: http://<api.host>:<api.port>)")
    api.set_defaults(run=batch_commands.bench_api_command)
    wrk = bench_sub.add_parser("wrk", help="each API route under wrk (max throughput, latency percentiles, "
                                           "ratio to GET /films/<id>)")
    wrk.add_argument("--duration", type=float, default=15.0, help="seconds per route (default 15)")
    wrk.add_argument("--connections", type=int, default=8, help="open connections (default 8)")
    wrk.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    wrk.add_argument("--url", help="API base URL (default: http://<api.host>:<api.port>)")
    wrk.set_defaults(run=batch_commands.bench_wrk_command)

    batch_commands.add_parsers(sub)
    live.add_parsers(sub, bench_sub)
    kibana.add_parsers(sub)
    privacy.add_parsers(sub)
    canary.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings: Settings = load_settings(args.config)
        return int(args.run(settings, args) or 0)
    except SettingsError as err:
        return _fail(EXIT_USAGE, err)
    except (ServiceError, KafkaException) as err:
        return _fail(EXIT_SERVICE, err)
    except (PromotionRefused, LookupError) as err:
        return _fail(EXIT_FAILED, err)
    except commands.FAILURES as err:
        return _fail(EXIT_FAILED, err)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except Exception as err:  # noqa: BLE001 - one line, not a traceback; CINEREC_DEBUG=1 shows it
        if os.environ.get("CINEREC_DEBUG"):
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        return _fail(EXIT_FAILED, f"{type(err).__name__}: {first} (set CINEREC_DEBUG=1 for the traceback)")


def _fail(code: int, err: Any) -> int:
    print(f"cinerec: error: {err}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

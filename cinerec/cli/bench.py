"""`cinerec bench …`: every benchmark (``ops/bench.py``), its figures printed as JSON."""

from __future__ import annotations

import argparse

from cinerec.core.settings import Settings
from cinerec.ops import bench

from ._output import print_json


def produce(settings: Settings, args: argparse.Namespace) -> int:
    report = bench.produce(settings, duration_s=args.duration)
    print_json(report)
    return 0 if report["failed"] == 0 else 1


def api(settings: Settings, args: argparse.Namespace) -> int:
    print_json(bench.api_latency(settings, duration_s=args.duration, rps=args.rps, url=args.url))
    return 0


def wrk(settings: Settings, args: argparse.Namespace) -> int:
    print_json(bench.wrk_routes(settings, duration_s=args.duration, connections=args.connections,
                                threads=args.threads, url=args.url, bare=args.bare))
    return 0


def freshness(settings: Settings, args: argparse.Namespace) -> int:
    print_json(bench.freshness(settings, rate=args.rate, duration_s=args.duration, probes_per_s=args.probes_per_s,
                               timeout_s=args.timeout, url=args.url))
    return 0


def throughput(settings: Settings, args: argparse.Namespace) -> int:
    print_json(bench.throughput(settings, rates=args.rates, duration_s=args.duration, metrics_url=args.metrics_url))
    return 0


def onboarding(settings: Settings, args: argparse.Namespace) -> int:
    print_json(bench.onboarding(settings, tries=args.tries, timeout_s=args.timeout, url=args.url))
    return 0


def forgetting(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.ops.forgetting import drift_recovery

    print_json(drift_recovery(settings, half_lives_s=args.half_life_s, users=args.users, rank=args.rank,
                              minutes=args.minutes))
    return 0


def served(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.cli.models import data_path, parse_params
    from cinerec.ops.served_quality import served_quality

    print_json(served_quality(settings, data_path(settings, args.data), model=args.model,
                              params=parse_params(args.param), k=args.k, wait_s=args.wait_s))
    return 0


def add_parsers(sub) -> None:
    benches = sub.add_parser("bench", help="benchmarks that print JSON").add_subparsers(dest="target", required=True)
    url_help = "API base URL (default: http://<api.host>:<api.port>)"

    p = benches.add_parser("produce", help="events/s acknowledged by the broker at full speed")
    p.add_argument("--duration", type=float, default=30.0)
    p.set_defaults(run=produce)

    p = benches.add_parser("api", help="p50/p95/p99 latency of the API at a fixed request rate")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--rps", type=float, default=200.0, help="requests per second (default 200)")
    p.add_argument("--url", help=url_help)
    p.set_defaults(run=api)

    p = benches.add_parser("wrk", help="each API route under wrk (max throughput, latency percentiles, "
                                       "ratio to GET /films/<id>)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per route (default 15)")
    p.add_argument("--connections", type=int, default=8, help="open connections (default 8)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--url", help=url_help)
    p.add_argument("--bare", action="store_true", help="also a bare Flask route returning a constant film under the "
                                                       "same server settings (the framework's limit)")
    p.set_defaults(run=wrk)

    p = benches.add_parser("freshness", help="seconds from a rating to recommendations based on it (JSON)")
    p.add_argument("--rate", type=float, default=2000.0, help="background events per second (default 2000)")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--probes-per-s", type=float, default=1.0, help="probe ratings per second (default 1)")
    p.add_argument("--timeout", type=float, default=30.0, help="give up on a probe after this many seconds")
    p.add_argument("--url", help=url_help)
    p.set_defaults(run=freshness)

    p = benches.add_parser("throughput", help="highest rate the running job sustains without growing lag")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                   default=[500, 1000, 2000, 5000, 10000, 20000], help="comma-separated steps")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per step (default 60)")
    p.add_argument("--metrics-url", help="the job's /metrics (default: 127.0.0.1:<streaming.metrics_port>)")
    p.set_defaults(run=throughput)

    p = benches.add_parser("onboarding", help="seconds from submitting the picks to recommendations "
                                              "based on them, over fresh accounts (JSON)")
    p.add_argument("--tries", type=int, default=20, help="new accounts (default 20)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up on one after this many seconds")
    p.add_argument("--url", help="the app's base URL (default: http://<api.host>:<api.port>)")
    p.set_defaults(run=onboarding)

    p = benches.add_parser("forgetting", help="offline, on the synthetic world: the CTR before a taste reversal "
                                              "and each minute after, with and without forgetting (JSON)")
    p.add_argument("--half-life-s", type=float, nargs="+", default=[0.0, 60.0], metavar="S",
                   help="half-lives to compare, seconds; 0 = no forgetting (default: 0 60)")
    p.add_argument("--users", type=int, default=300, help="users sampled (default 300)")
    p.add_argument("--rank", type=int, default=64, help="ALS rank (default 64, the demo's)")
    p.add_argument("--minutes", type=int, default=5, help="minutes after the reversal (default 5)")
    p.set_defaults(run=forgetting)
    p = benches.add_parser("served", help="nDCG@k of what the API serves after the temporal train part is "
                                          "replayed through Kafka and the streaming job, next to the same model "
                                          "offline (starts its own Kafka and Elasticsearch; JSON)")
    p.add_argument("--data", help="MovieLens directory (default: data.path)")
    p.add_argument("--model", default="hybrid", help="a servable model (default hybrid)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter override")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--wait-s", type=float, default=900.0, help="longest wait for the job to apply the replay")
    p.set_defaults(run=served)

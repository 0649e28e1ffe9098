"""Commands that run the system's parts: `cinerec config show`, `services`, `stream`, `bootstrap`, `serve`,
`demo`, `kibana import`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cinerec.core.settings import Settings, env_var
from cinerec.ops import services
from cinerec.ops.kibana import SAVED_OBJECTS, import_objects

from ._output import print_json


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
    if args.cluster:
        return cluster_command(settings, action, args.workers)
    if action == "up":
        report = services.up(settings)
        print(f"kafka          {settings.kafka.bootstrap_servers}  topics {report['topics']}", file=sys.stderr)
        print(f"elasticsearch  {settings.elasticsearch.url}  ({report['elasticsearch']['status']})", file=sys.stderr)
    elif action == "down":
        report = services.down(settings)
    else:
        report = services.status(settings)
    print_json(report)
    healthy = action != "status" or all(report[s]["healthy"] for s in ("kafka", "elasticsearch"))
    return 0 if healthy else 3


def cluster_command(settings: Settings, action: str, workers: int | None) -> int:
    """The local cluster rehearsal (``ops/services/cluster.py``); ``up`` prints the settings that
    point every command at it."""
    from cinerec.ops.services import cluster

    if action == "down":
        print_json({"stopped": cluster.down(settings)})
        return 0
    running = cluster.up(settings, workers) if action == "up" else cluster.of(settings)
    report = cluster.status(running)
    print_json(report)
    if action == "up":
        print("run the system on it with these settings, e.g. in a shell:", file=sys.stderr)
        print("  export " + " ".join(f"{key}={value}" for key, value in report["settings"].items()), file=sys.stderr)
    return 0


def stream_command(settings: Settings, args: argparse.Namespace) -> int:
    """The streaming job on the champion (``ops/stream.py``)."""
    from cinerec.ops.stream import run

    os.nice(settings.streaming.nice)        # Spark's JVM and Python workers, started from here, inherit it
    totals = run(settings, duration_s=args.duration, available_now=args.available_now)
    print(f"stream: stopped after {totals['batches']} batches ({totals['accepted']} accepted, "
          f"{totals['dead']} dead letters, {totals['duplicates']} duplicates, {totals['restarts']} restarts)",
          file=sys.stderr)
    return 0


def bootstrap_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.ops.bootstrap import run

    print_json(run(settings))
    return 0


def serve_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.ops.serve import serve

    serve(settings, duration_s=args.duration, constant=args.constant)
    return 0


def demo_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.ops.demo import feed_rate, run

    timeline = run(settings, duration_s=args.duration, rate=feed_rate(settings, args.rate), data=args.data,
                   replay_rate=args.replay_rate, loop=args.loop)
    if timeline is not None:
        print_json(timeline)
    return 0


def kibana_command(settings: Settings, args: argparse.Namespace) -> int:
    answer = import_objects(args.url, args.file)
    print_json({"url": args.url, "file": str(args.file), "imported": answer.get("successCount")})
    return 0


def add_parsers(sub) -> None:
    config = sub.add_parser("config", help="show the effective settings").add_subparsers(dest="action", required=True)
    show = config.add_parser("show", help="print settings, secrets masked")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML-like text")
    show.set_defaults(run=config_show)

    services_p = sub.add_parser("services", help="start, stop or check Kafka and Elasticsearch")
    services_p.add_argument("action", choices=("up", "down", "status"))
    services_p.add_argument("--cluster", action="store_true",
                            help="the local cluster rehearsal instead: 3 Kafka nodes, 3 Elasticsearch nodes, a Spark "
                                 "standalone master and workers, under <data_dir>/cluster")
    services_p.add_argument("--workers", type=int, choices=(1, 2, 3),
                            help="with --cluster up: Spark workers to run (default: as before, first time 2)")
    services_p.set_defaults(run=services_command)

    stream = sub.add_parser("stream", help="run the streaming job (Kafka -> fold-in -> Elasticsearch)")
    stream.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    stream.add_argument("--available-now", action="store_true", help="process what is in Kafka now, then stop")
    stream.set_defaults(run=stream_command)

    bootstrap = sub.add_parser("bootstrap", help="a deployed stack's first step: wait for MLflow, Kafka and "
                               "Elasticsearch, create topics; world, train, promote, index when there is no champion")
    bootstrap.set_defaults(run=bootstrap_command)

    serve = sub.add_parser("serve", help="run the API under gunicorn (setting api.*)")
    serve.add_argument("--duration", type=float, help="stop after this many seconds (default: SIGINT/SIGTERM)")
    serve.add_argument("--constant", action="store_true",
                       help="serve a bare Flask app answering one constant film instead of the API, under the same "
                            "server settings: the framework's floor (`bench wrk --floor` starts it)")
    serve.set_defaults(run=serve_command)

    demo = sub.add_parser("demo", help="run the whole loop: stream, API and simulator (Ctrl-C or --duration stops it)")
    demo.add_argument("--duration", type=float, help="stop everything after this many seconds and exit 0")
    demo.add_argument("--rate", type=float,
                      help=f"simulated events per second (default: setting simulator.rate when env "
                           f"{env_var('simulator', 'rate')} sets it, else the demo's own 200, ops.demo.DEMO_RATE)")
    demo.add_argument("--data", type=Path, help="a MovieLens directory: train on it and replay it instead")
    demo.add_argument("--replay-rate", type=float, default=100.0,
                      help="with --data: replayed events per second (default 100)")
    demo.add_argument("--loop", action="store_true",
                      help="the operations loop as a timeline: baseline, drift, alert, retraining, canary, "
                           "recovery (synthetic world, needs Prometheus); exits when the timeline ends")
    demo.set_defaults(run=demo_command)

    kibana = sub.add_parser("kibana", help="the activity dashboards as Kibana saved objects")
    load = kibana.add_subparsers(dest="action", required=True).add_parser(
        "import", help="post kibana/cinerec.ndjson to a Kibana's saved-objects API")
    load.add_argument("--url", required=True, help="Kibana's base URL, e.g. http://localhost:5601")
    load.add_argument("--file", type=Path, default=SAVED_OBJECTS, help="saved objects (default: %(default)s)")
    load.set_defaults(run=kibana_command)

"""`cinerec canary …` and `cinerec online`: progressive delivery judged on online metrics.

    canary start --fraction F   build the challenger's own index version (aliases untouched) and
                                let the API serve a hash-stable fraction F of users from it
    canary status               the numbers so far and what ``core.canary.decide`` would do
    canary decide [--watch S]   one look (every S seconds until decided): promote or abort when
                                the test says so; the decision and its numbers go to the canary
                                document and to the challenger's MLflow version (tag ``canary``)
    canary promote | abort      by hand
    online                      the online-metrics consumer (``streaming/online.py``)
    retrain --now               the retraining pipeline once (``cli/pipeline.py``)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from ._output import print_json
from .monitoring import ONLINE_PORT, counter_samples
from core.settings import Settings


def _es(settings: Settings):
    from search.client import connect

    return connect(settings.elasticsearch)


def start_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(start_canary(settings, args.fraction))
    return 0


def start_canary(settings: Settings, fraction: float) -> dict:
    """Builds the challenger's own indices (aliases untouched) and starts serving ``fraction`` of
    users from them; the canary document. The command and the retraining pipeline both use it."""
    from .batch_commands import build_served_indices
    from batch.registry import CHALLENGER, CHAMPION, Registry
    from search import canary

    registry = Registry(settings)
    challenger, champion = registry.version(CHALLENGER), registry.version(CHAMPION)
    if challenger is None or champion is None or challenger.version == champion.version:
        raise LookupError("a canary needs a champion and another challenger: run `cinerec train` first")
    if not 0 < fraction < 1:
        raise ValueError("--fraction must be between 0 and 1")
    build_served_indices(settings, CHALLENGER, swap=False)
    return canary.start(_es(settings), version=str(challenger.version), champion_version=str(champion.version),
                        fraction=fraction)


def status_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(look(settings, act=False))
    return 0


def decide_command(settings: Settings, args: argparse.Namespace) -> int:
    while True:
        report = look(settings, act=True)
        print(json.dumps(report), file=sys.stderr, flush=True)
        if not args.watch or report["decision"]["action"] != "wait":
            print_json(report)
            return 0
        time.sleep(args.watch)


def look(settings: Settings, *, act: bool) -> dict:
    """The canary's numbers and decision at this look; with ``act``, carries it out."""
    from core.canary import Arm, decide
    from search import canary
    from streaming.online import arms_since

    es = _es(settings)
    doc = canary.running(es)
    if doc is None:
        raise LookupError("no canary is running: `cinerec canary start --fraction 0.1`")
    counts = arms_since(es, doc["started_ms"])
    errors = _variant_requests(settings)
    arms = {v: Arm(int(counts.get(v, {}).get("impressions") or 0), int(counts.get(v, {}).get("clicks") or 0),
                   *errors.get(v, (0, 0))) for v in ("champion", "challenger")}
    decision = decide(arms["champion"], arms["challenger"], doc["looks"] + 1)
    report = {"canary": {k: doc[k] for k in ("version", "champion_version", "fraction", "started_ms")},
              "online": counts, "decision": decision.as_dict()}
    if act:
        canary.update(es, looks=doc["looks"] + 1, decision=decision.as_dict())
        if decision.action != "wait":
            report["result"] = finish(settings, decision.action, decision.as_dict())
    return report


def finish(settings: Settings, action: str, decision: dict) -> dict:
    """Promotes (champion alias and served indices to the challenger) or aborts the canary, and
    records the decision with the challenger's model version."""
    from batch.indexing import serve_version
    from batch.registry import Registry
    from search import canary

    es, registry = _es(settings), Registry(settings)
    doc = canary.current(es)
    version = doc["version"]
    registry.client.set_model_version_tag(registry.name, version, "canary", json.dumps(
        {"action": action, **decision, "fraction": doc["fraction"], "started_ms": doc["started_ms"]}))
    if action == "promote":
        registry.client.set_model_version_tag(registry.name, version, "previous_champion", doc["champion_version"])
        registry.client.set_registered_model_alias(registry.name, "champion", version)
        serve_version(es, version, settings.elasticsearch.keep_versions)
    canary.update(es, status="promoted" if action == "promote" else "aborted", decided_ms=int(time.time() * 1000),
                  decision={"action": action, **decision})
    return {"action": action, "version": version, "champion_now": version if action == "promote"
            else doc["champion_version"]}


def by_hand_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(finish(settings, args.action, {"reason": "by hand"}))
    return 0


def _variant_requests(settings: Settings) -> dict[str, tuple[int, int]]:
    """(requests, errors) per variant from the API's /metrics; empty when the API is not reachable."""
    out: dict[str, list[int]] = {}
    for name, labels, value in counter_samples(f"http://{settings.api.host}:{settings.api.port}/metrics") or []:
        if name == "cinerec_variant_requests_total":
            pair = out.setdefault(labels["variant"], [0, 0])
            pair[0] += int(value)
            pair[1] += int(value) if labels["outcome"] == "error" else 0
    return {v: (r, e) for v, (r, e) in out.items()}


def online_command(settings: Settings, args: argparse.Namespace) -> int:
    """The online-metrics consumer, until Ctrl-C / SIGTERM (or --duration)."""
    from prometheus_client import start_http_server

    from .batch_commands import stop_on_signals
    from .commands import world_dir
    from batch import movielens
    from batch.registry import CHAMPION, Registry
    from search.indices import ensure_event_indices
    from simulator.closed_loop import truth
    from simulator.world import TASTES_FILE, Tastes
    from streaming.online import OnlineMetrics, Reference, consume

    es = _es(settings)
    ensure_event_indices(es)
    reference, judge = None, None
    version = Registry(settings).version(CHAMPION)
    if version is not None:
        reference = Reference.of(movielens.load(Path(version.tags["data_path"])).ratings)
    tastes_file = world_dir(settings) / TASTES_FILE
    if tastes_file.is_file():
        tastes = Tastes.load(tastes_file)
        index = {int(u): i for i, u in enumerate(tastes.user_id)}
        judge = (lambda user, shown: truth(tastes, index[user], shown, set()) if user in index else None)
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port)
        except OSError as err:
            print(f"online: no /metrics on :{args.metrics_port} ({err.strerror}); counting goes on", file=sys.stderr)
            args.metrics_port = 0
    stop = threading.Event()
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    print(f"online metrics: {settings.kafka.feedback_topic} + {settings.kafka.ratings_topic} -> online_metrics"
          + (f"; metrics on :{args.metrics_port}/metrics" if args.metrics_port else ""), file=sys.stderr, flush=True)
    with stop_on_signals(stop):
        consume(settings.kafka, OnlineMetrics(es, truth=judge, reference=reference), stop)
    print("online: stopped", file=sys.stderr)
    return 0


def retrain_command(settings: Settings, args: argparse.Namespace) -> int:
    if not args.now:
        print("the pipeline runs on its schedule and sensor under Dagster: dagster dev -m cli.pipeline; "
              "`cinerec retrain --now` runs it once here", file=sys.stderr)
        return 2
    from cli.pipeline import run_now

    report = run_now(args.reason)
    print_json(report)
    return 0 if report["success"] else 1


def add_parsers(sub) -> None:
    canary = sub.add_parser("canary", help="serve a fraction of users from the challenger; decide on online metrics")
    actions = canary.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="build the challenger's indices and start serving a fraction from it")
    start.add_argument("--fraction", type=float, default=0.1, help="share of users (default 0.1)")
    start.set_defaults(run=start_command)
    actions.add_parser("status", help="numbers so far and the decision they give").set_defaults(run=status_command)
    decide = actions.add_parser("decide", help="one look: promote or abort when the test says so")
    decide.add_argument("--watch", type=float, default=0.0, metavar="S", help="look every S seconds until decided")
    decide.set_defaults(run=decide_command)
    for name in ("promote", "abort"):
        actions.add_parser(name, help=f"{name} by hand").set_defaults(run=by_hand_command)
    online = sub.add_parser("online", help="online metrics of the closed loop (impressions, clicks, drift)")
    online.add_argument("--metrics-port", type=int, default=ONLINE_PORT, help="Prometheus /metrics port (0: off)")
    online.add_argument("--duration", type=float, help="seconds to run (default: until stopped)")
    online.set_defaults(run=online_command)
    retrain = sub.add_parser("retrain", help="the retraining pipeline: extract, train, gate, canary (Dagster)")
    retrain.add_argument("--now", action="store_true", help="run it once, in this process")
    retrain.add_argument("--reason", default="manual", help="what triggered it (a tag of the run)")
    retrain.set_defaults(run=retrain_command)

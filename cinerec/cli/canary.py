"""`cinerec canary …` and `cinerec online`: progressive delivery judged on online metrics.

    canary start --fraction F   build the challenger's own index version (aliases untouched) and
                                let the API serve a hash-stable fraction F of users from it
    canary status               the numbers so far and what ``core.canary.decide`` would do
    canary decide [--watch S]   one look (every S seconds until decided): promote or abort when
                                the test says so; the decision and its numbers go to the canary
                                document and to the challenger's MLflow version (tag ``canary``)
    canary promote | abort      by hand
    online                      the online-metrics consumer (``ops/online.py``)
    retrain --now               a run of the retraining pipeline (``ops/pipeline.py``), submitted to
                                the scheduler when it runs, else executed here on its instance
    retrain --from-failure RUN  that failed run again from its failed step
    scheduler                   Dagster's daemon and web UI on the persistent instance
                                (``ops/scheduler.py``): the schedule and sensors tick there
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from cinerec.core.settings import Settings
from cinerec.ops.canary import finish, look, start_canary
from cinerec.ops.monitoring import ONLINE_PORT

from ._output import print_json


def start_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(start_canary(settings, args.fraction))
    return 0


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


def by_hand_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(finish(settings, args.action, {"reason": "by hand"}))
    return 0


def online_command(settings: Settings, args: argparse.Namespace) -> int:
    """The online-metrics consumer, until Ctrl-C / SIGTERM (or --duration)."""
    from cinerec.ops.online import run

    run(settings, metrics_port=args.metrics_port, duration_s=args.duration)
    return 0


def retrain_command(settings: Settings, args: argparse.Namespace) -> int:
    """Submits the run to the scheduler (or executes it here when none runs) and prints its report."""
    from cinerec.ops import scheduler

    if not (args.now or args.from_failure):
        print("the pipeline runs on its schedule and sensors under the scheduler (`cinerec scheduler`, "
              "`make demo`); `cinerec retrain --now` submits a run", file=sys.stderr)
        return 2
    reason = f"re-execution of {args.from_failure}" if args.from_failure else args.reason
    if not scheduler.answering(settings):
        print(f"the scheduler does not answer at {scheduler.url(settings)}: running the pipeline here, on its "
              f"instance ({scheduler.home(settings)})", file=sys.stderr, flush=True)
        report = scheduler.execute_here(settings, reason, from_failure_of=args.from_failure)
    else:
        run_id = (scheduler.reexecute(settings, args.from_failure) if args.from_failure
                  else scheduler.submit(settings, reason))
        if run_id is None:
            print_json({"submitted": False, "reason": "a retraining is already queued or running",
                        "runs": scheduler.active_runs(settings)})
            return 0
        print(f"run {run_id} queued: {scheduler.url(settings)}/runs/{run_id}", file=sys.stderr, flush=True)
        report = scheduler.wait_for_run(settings, run_id) if args.wait else scheduler.run_report(settings, run_id)
    print_json(report)
    return 1 if report["status"] in ("FAILURE", "CANCELED") else 0


def scheduler_command(settings: Settings, args: argparse.Namespace) -> int:
    """Dagster's daemon and web UI until Ctrl-C / SIGTERM (which stop it and its children)."""
    import threading

    from cinerec.core.shutdown import stop_on_signals
    from cinerec.ops import scheduler

    stop = threading.Event()
    with stop_on_signals(stop):
        process = scheduler.start(settings)
        try:
            scheduler.wait_until_answering(settings, process)
            print(f"the scheduler runs: {scheduler.url(settings)} (instance {scheduler.home(settings)})",
                  file=sys.stderr, flush=True)
            while not stop.wait(1.0) and process.poll() is None:
                pass
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(60)
    return 0 if stop.is_set() else process.returncode


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
    retrain.add_argument("--now", action="store_true", help="submit a run (executed here when no scheduler runs)")
    retrain.add_argument("--from-failure", metavar="RUN_ID", help="re-execute a failed run from its failed step")
    retrain.add_argument("--wait", action="store_true", help="with the scheduler: wait until the run has finished")
    retrain.add_argument("--reason", default="manual", help="what triggered it (a tag of the run)")
    retrain.set_defaults(run=retrain_command)
    sub.add_parser("scheduler", help="Dagster's daemon and web UI: the schedule and sensors of the pipeline tick"
                   ).set_defaults(run=scheduler_command)

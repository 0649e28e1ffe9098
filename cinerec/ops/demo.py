"""The whole system on one machine (`cinerec demo`).

    cinerec demo:  services up ─▶ (world, train, promote, index when missing)
                   ─▶ stream + serve + simulate (or replay) + online metrics + closed-loop
                      users as child processes ─▶ Ctrl-C or --duration
                   ─▶ stops every child (and the services when it started them), exit 0
With ``loop``, the operations loop as a timeline (``ops/demo_loop.py``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from cinerec.batch.store import cut_dir
from cinerec.core.errors import ServiceError
from cinerec.core.settings import Settings, env_var
from cinerec.platform.elasticsearch import connect
from cinerec.platform.registry import CHAMPION, Registry
from cinerec.search.queries import FILM_LISTS, FILMS
from cinerec.simulator.world import world_dir

from . import demo_loop, monitoring, scheduler
from . import services as svc
from .processes import record, running, stop_child, stop_leftovers
from .services._process import port_holder, require_free_port

# The demo's model rank. The tuned ALS (config/models/als.toml, rank 512) is for ranking quality;
# on two cores every streamed fold-in solve and user document grows with the rank, so the demo
# serves rank 64 to keep its loop within the freshness target.
DEMO_RANK = 64
# The demo serves the benchmark's best model, the hybrid, with its ALS part at the demo's rank; the
# loop serves ALS alone, forgetting with ``demo_loop.HALF_LIFE_S`` (the hybrid's item-item parts do
# not forget: their lists change only with a retraining).
DEMO_MODEL = ("--model", "hybrid", "--param", f'part_params={{"als": {{"rank": {DEMO_RANK}}}}}')
DEMO_LOOP_MODEL = ("--model", "als", "--param", f"rank={DEMO_RANK}",
                   "--param", f"half_life_days={demo_loop.HALF_LIFE_S / 86_400:.8f}")
# The demo's feed, ratings/s, unless given (`--rate`, CINEREC_SIMULATOR__RATE): simulator.rate's default
# (1,000, for `cinerec simulate`) would leave the job behind its freshness target on two cores, and
# the loop's clocks (history, forgetting, retraining share) are set for 200.
DEMO_RATE = 200.0
DEMO_CLOSED_LOOP_RATE = 5              # simulated people asking for recommendations per second
DEMO_CUT = 0.8                         # with --data: train on the first 80 % by time, replay the rest
# The demo's feed (200 ratings/s) adds a fifth of the synthetic world's 60,000 ratings every minute:
# at the default share (0.2) the new_data sensor would retrain without pause on two cores. The demo
# retrains on new data when the streamed ratings match the champion's data (unless set otherwise).
DEMO_NEW_DATA_SHARE = 1.0


def run(settings: Settings, *, duration_s: float | None = None, rate: float = DEMO_RATE, data: Path | None = None,
        replay_rate: float = 100.0, loop: bool = False) -> dict | None:
    """Runs the demo until Ctrl-C, SIGTERM or ``duration_s``; ``data``: a MovieLens history to train
    on and replay instead of the synthetic world; ``loop``: the operations loop's timeline (returned)."""
    signal.signal(signal.SIGTERM, _interrupt)          # `kill` stops the demo like Ctrl-C does
    pids = pid_dir(settings)
    _stop_leftovers(pids)
    _check_ports(settings, loop)
    base = f"http://{settings.api.host}:{settings.api.port}"
    print(f"cinerec demo: the app will be at {base}/ (sign up, pick {settings.web.picks} films) and "
          f"{base}/dashboard once the loop runs", file=sys.stderr, flush=True)
    if loop and (data or monitoring.missing()):
        raise ValueError("--loop runs on the synthetic world (no --data) and needs Prometheus: "
                         f"{monitoring.missing() or 'drop --data'}")
    started_services = not all(svc.status(settings)[s]["healthy"] for s in ("kafka", "elasticsearch"))
    if loop:
        settings = _fresh_loop_dir(settings, started_services)
    if started_services:
        svc.up(settings)
    else:
        svc.ensure_topics(settings.kafka)
    children: dict[str, subprocess.Popen] = {}
    timeline = None

    def start(role: str, child: subprocess.Popen) -> None:
        children[role] = child
        assert isinstance(child.args, list)            # every child is started from an argv list
        record(child.pid, child.args, pids / f"{role}.pid")
    # Writes need a key: a demo without one configured makes one for this run (the API child inherits it).
    api_key = next(iter(settings.api.keys()), None) or secrets.token_urlsafe(16)
    if not settings.api.keys():
        os.environ["CINEREC_API__API_KEYS"] = api_key
    lasting = str(duration_s or 10**9)
    if "CINEREC_OPS__NEW_DATA_SHARE" not in os.environ:
        os.environ["CINEREC_OPS__NEW_DATA_SHARE"] = str(DEMO_NEW_DATA_SHARE)      # the scheduler's too
    if loop and "CINEREC_OPS__NEW_DATA_CHECK_S" not in os.environ:
        os.environ["CINEREC_OPS__NEW_DATA_CHECK_S"] = str(demo_loop.NEW_DATA_CHECK_S)

    def people(drift: float) -> None:
        """The rating feed and, on the synthetic world, people who react to what they are shown."""
        for role in ("feed", "closed_loop"):
            if role in children:
                stop_child(children.pop(role))
        drifting = ["--drift", str(drift)] if drift else []
        start("feed", _cinerec(*(["replay", str(data), "--after", str(DEMO_CUT), "--rate", str(replay_rate)]
                                 if data else ["simulate", "--rate", str(rate), "--duration", lasting,
                                               "--malformed", "0.01", *drifting])))
        if not data:
            start("closed_loop", _cinerec("simulate", "--closed-loop", "--rate", str(DEMO_CLOSED_LOOP_RATE),
                                          "--duration", lasting, *drifting))
    try:
        prepare_champion(settings, data, rate=rate, loop=loop, pids=pids)
        start("stream", _cinerec("stream"))
        start("serve", _cinerec("serve"))
        people(0.0)
        start("online", _cinerec("online"))
        start("scheduler", scheduler.start(settings))
        if monitoring.missing():
            print(f"cinerec demo: no Prometheus: {monitoring.missing()}", file=sys.stderr, flush=True)
        else:
            for role, child in zip(("prometheus", "alertmanager"), monitoring.start(
                    settings, api_key, speedup=demo_loop.SPEEDUP if loop else 1)):
                start(role, child)
        print("\n".join([f"cinerec demo: the app is at {base}/  (dashboard: {base}/dashboard)",
                         f"  events -> {settings.kafka.ratings_topic} -> stream -> Elasticsearch -> API",
                         f"  {base}/docs", f"  {base}/films?q=toy", f"  {base}/users/1/recommendations",
                         f"  {base}/health   {base}/metrics",
                         f"  POST {base}/ratings with header X-API-Key: "
                         f"{'a key of api.api_keys' if settings.api.keys() else api_key}",
                         f"  stream metrics: http://127.0.0.1:{settings.streaming.metrics_port}/metrics",
                         f"  online metrics (CTR, drift): http://127.0.0.1:{monitoring.ONLINE_PORT}/metrics; "
                         "`cinerec canary status` during a canary",
                         *([f"  Prometheus: http://127.0.0.1:{monitoring.PROMETHEUS_PORT}/alerts, Alertmanager: "
                            f"http://127.0.0.1:{monitoring.ALERTMANAGER_PORT}/"] if "prometheus" in children else []),
                         f"  scheduler (Dagster: retraining runs, sensor ticks): {scheduler.url(settings)}"
                         " — `cinerec retrain --now` submits a run",
                         "Ctrl-C stops everything the demo started."]), file=sys.stderr, flush=True)
        scheduler.wait_until_answering(settings, children["scheduler"])
        print(f"cinerec demo: the scheduler ticks at {scheduler.url(settings)} (instance "
              f"{scheduler.home(settings)})", file=sys.stderr, flush=True)
        if not loop:
            _print_latencies(settings, base)
        if loop:
            timeline = demo_loop.run(settings, people, healthy=lambda: _check_children(children))
        else:
            deadline = time.monotonic() + duration_s if duration_s else None
            while deadline is None or time.monotonic() < deadline:
                _check_children(children)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(list(children.values())):
            stop_child(child)
        shutil.rmtree(pids, ignore_errors=True)
        if started_services:
            svc.down(settings)
    print("cinerec demo: stopped", file=sys.stderr)
    return timeline


def feed_rate(settings: Settings, given: float | None, environ=os.environ) -> float:
    """``--rate`` when given, else the simulator.rate setting when the environment sets it
    (CINEREC_SIMULATOR__RATE, as `make demo` passes it), else ``DEMO_RATE``: the demo keeps its own
    value unless told, as it does for ops.new_data_share."""
    if given is not None:
        return given
    return settings.simulator.rate if env_var("simulator", "rate") in environ else DEMO_RATE


def pid_dir(settings: Settings) -> Path:
    """``<data_dir>/demo-pids``: a pid file per process the demo runs (the demo's own, ``demo.pid``,
    too), under the data dir it was started with (the loop's own data dir is emptied at its start)."""
    return Path(settings.services.data_dir).resolve() / "demo-pids"


def _stop_leftovers(pids: Path) -> None:
    """A demo killed with SIGKILL leaves its children running in their own sessions (the API on its
    port, Prometheus, the job…): the next one stops them first, in one line. A demo that still runs
    is not a leftover: it is named instead."""
    if (other := running(pids / "demo.pid")) is not None:
        raise ServiceError(f"a demo already runs from this data dir (pid {other}): Ctrl-C it, or `kill {other}`")
    stopped = stop_leftovers(pids)
    if stopped:
        print(f"cinerec demo: stopped what an earlier demo left running: {', '.join(stopped)}",
              file=sys.stderr, flush=True)
    record(os.getpid(), Path("/proc/self/cmdline").read_bytes().decode().split("\0")[:-1], pids / "demo.pid")


def _check_ports(settings: Settings, loop: bool) -> None:
    """A port the demo's children need, held by something that is not a leftover of ours, is one line
    naming it and its holder before anything starts (ServiceError); the online metrics, Prometheus and
    Alertmanager only get a warning unless ``loop`` (the demo runs without them, the loop does not)."""
    needed = {settings.api.port: "the API (api.port)", settings.ops.dagster_port: "the scheduler (ops.dagster_port)"}
    if settings.streaming.metrics_port:
        needed[settings.streaming.metrics_port] = "the streaming job's metrics (streaming.metrics_port)"
    optional = {monitoring.ONLINE_PORT: "the online metrics"}
    if not monitoring.missing():
        optional |= {monitoring.PROMETHEUS_PORT: "Prometheus", monitoring.ALERTMANAGER_PORT: "Alertmanager",
                     monitoring.ALERTMANAGER_CLUSTER_PORT: "Alertmanager's cluster listener"}
    for port, what in (needed | optional if loop else needed).items():
        require_free_port(port, what)
    for port, what in ({} if loop else optional).items():
        if (holder := port_holder(port)) is not None:
            print(f"cinerec demo: port {port}, which {what} needs, is held by {holder}: it will not run",
                  file=sys.stderr, flush=True)


def _fresh_loop_dir(settings: Settings, services_down: bool) -> Settings:
    """The loop's story starts from nothing: its own data dir (world, model, checkpoint, services'
    data, monitoring history), emptied, so no state of an earlier run's drift carries over."""
    if not services_down:
        raise RuntimeError("`cinerec demo --loop` starts its own Kafka and Elasticsearch on a fresh data dir: "
                           "stop the running ones first (`cinerec services down`)")
    loop_dir = Path(settings.services.data_dir).resolve() / "loop"
    shutil.rmtree(loop_dir, ignore_errors=True)
    os.environ["CINEREC_SERVICES__DATA_DIR"] = str(loop_dir)          # the children's too
    print(f"cinerec demo: the loop runs from scratch in {loop_dir}", file=sys.stderr, flush=True)
    return settings.replace(services__data_dir=str(loop_dir))


def _check_children(children: dict[str, subprocess.Popen]) -> None:
    """The loop cannot go on without the job, the API and the scheduler."""
    for role in ("stream", "serve", "scheduler"):
        if children[role].poll() is not None:
            raise RuntimeError(f"`cinerec {role}` exited with {children[role].returncode}")


def _print_latencies(settings: Settings, base: str) -> None:
    """What a person should expect of this machine now: each route's latency, one request at a time
    (docs/benchmarks.md has the throughput under load, per core)."""
    from .bench import one_at_a_time

    try:
        figures = one_at_a_time(settings, base)
    except Exception as err:  # noqa: BLE001 - a figure the demo could not take is not a reason to stop it
        print(f"cinerec demo: could not time the API ({str(err)[:120]})", file=sys.stderr, flush=True)
        return
    names = {"title": "a title's also-watched", "user": "a user's recommendations", "search": "a title search",
             "film_by_id": "a film"}
    timed = ", ".join(f"{names.get(n, n)} {f['p50_ms']:g} ms (slowest {f['max_ms']:g})" for n, f in figures.items())
    print(f"cinerec demo: on this machine now, one request at a time (p50 of 50, caches cold): {timed}. "
          "Throughput under load, per core: docs/benchmarks.md.", file=sys.stderr, flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def prepare_champion(settings: Settings, data: Path | None, *, rate: float, loop: bool = False,
                     pids: Path | None = None) -> None:
    """Whatever the loop still lacks: a world, a champion trained on ``data`` (a MovieLens history:
    on its first ``DEMO_CUT`` by time, the rest is what the demo replays), indices. With ``loop``,
    the world's history is dated on the feed's clock (the time its ratings take at ``rate``) and
    the champion forgets with ``demo_loop.HALF_LIFE_S``."""
    champion = Registry(settings).version(CHAMPION)
    if data is None and champion is None:
        if not (world_dir(settings) / "ratings.csv").exists():
            sim = settings.simulator
            history_s = sim.users * sim.mean_ratings_per_user / rate
            _run(pids, "data", "generate", *(["--history-seconds", f"{history_s:.0f}"] if loop else []))
        data = world_dir(settings)
    elif data is not None:
        cut = cut_dir(settings.services.data_dir, data, DEMO_CUT)
        if not (cut / "ratings.csv").exists():
            _run(pids, "data", "cut", str(data), "--fraction", str(DEMO_CUT))
        data = cut
    if data is not None and (champion is None or Path(champion.tags["data_path"]) != data.resolve()):
        _run(pids, "train", "--data", str(data), *(DEMO_LOOP_MODEL if loop else DEMO_MODEL))
        _run(pids, "promote", check=False)                  # a refusal keeps the current champion
        _run(pids, "index")
    elif not all(connect(settings.elasticsearch).indices.exists_alias(name=a) for a in (FILMS, FILM_LISTS)):
        _run(pids, "index")


def _cinerec(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", *args], start_new_session=True)


def _run(pids: Path | None, *args: str, check: bool = True) -> None:
    """One step (of the demo or the bootstrap), waited for, in the caller's process group (Ctrl-C
    reaches it) and, for the demo, in ``pids/step.pid`` (a training the demo's SIGKILL left behind is
    stopped by the next demo, not run twice)."""
    print(f"cinerec: running `cinerec {' '.join(args)}`", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "cinerec.cli.main", *args]
    with subprocess.Popen(command) as step:
        if pids is not None:
            record(step.pid, command, pids / "step.pid")
        try:
            step.wait()
        except BaseException:                          # Ctrl-C or SIGTERM: the step ends too
            step.terminate()
            raise
    if step.returncode != 0 and check:
        raise RuntimeError(f"`cinerec {' '.join(args)}` failed")

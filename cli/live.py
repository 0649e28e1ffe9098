"""The live loop: `cinerec demo` runs it, `cinerec bench freshness|throughput` measure it.

    cinerec demo:  services up ─▶ (world, train, promote, index when missing)
                   ─▶ stream + serve + simulate (or replay) + online metrics + closed-loop
                      users as child processes ─▶ Ctrl-C or --duration
                   ─▶ stops every child (and the services when it started them), exit 0
The benchmarks need the loop running (`cinerec demo`, or `cinerec stream` and `cinerec serve`):
freshness publishes probe ratings among the load and polls the API until the user's
recommendations are based on them; throughput raises the rate until the job's lag grows.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer

from . import bench_onboarding, demo_loop, monitoring
from . import services as svc
from ._output import print_json
from .commands import cut_dir, load_or_generate_tastes, world_dir
from .events import end_offsets
from batch.registry import CHAMPION, Registry
from core.events import RatingEvent
from core.settings import Settings
from search.client import connect
from search.queries import FILM_LISTS, FILMS, USERS
from simulator.producer import producer_config, publish, simulated_messages

PROBE_USER_BASE = 900_000_000          # probe users of `bench freshness`: ids no dataset uses
# The demo's model rank. The tuned ALS (config/models/als.toml, rank 512) is for ranking quality;
# on two cores every streamed fold-in solve and user document grows with the rank, so the demo
# serves rank 64 to keep its loop within the freshness target.
DEMO_RANK = 64
DEMO_CLOSED_LOOP_RATE = 5              # simulated people asking for recommendations per second
DEMO_CUT = 0.8                         # with --data: train on the first 80 % by time, replay the rest


# -- demo -------------------------------------------------------------------------------------

def demo_command(settings: Settings, args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)          # `kill` stops the demo like Ctrl-C does
    base = f"http://{settings.api.host}:{settings.api.port}"
    print(f"cinerec demo: the app will be at {base}/ (sign up, pick {settings.web.picks} films) and "
          f"{base}/dashboard once the loop runs", file=sys.stderr, flush=True)
    if args.loop and (args.data or monitoring.missing()):
        raise ValueError("--loop runs on the synthetic world (no --data) and needs Prometheus: "
                         f"{monitoring.missing() or 'drop --data'}")
    started_services = not all(svc.status(settings)[s]["healthy"] for s in ("kafka", "elasticsearch"))
    if args.loop:
        settings = _fresh_loop_dir(settings, started_services)
    if started_services:
        svc.up(settings)
    else:
        svc.ensure_topics(settings.kafka)
    children: dict[str, subprocess.Popen] = {}
    # Writes need a key: a demo without one configured makes one for this run (the API child inherits it).
    api_key = next(iter(settings.api.keys()), None) or secrets.token_urlsafe(16)
    if not settings.api.keys():
        os.environ["CINEREC_API__API_KEYS"] = api_key
    lasting = str(args.duration or 10**9)

    def people(drift: float) -> None:
        """The rating feed and, on the synthetic world, people who react to what they are shown."""
        for role in ("feed", "closed_loop"):
            if role in children:
                _stop(children.pop(role))
        drifting = ["--drift", str(drift)] if drift else []
        children["feed"] = _cinerec(*(["replay", str(args.data), "--after", str(DEMO_CUT), "--rate",
                                       str(args.replay_rate)] if args.data else
                                      ["simulate", "--rate", str(args.rate), "--duration", lasting,
                                       "--malformed", "0.01", *drifting]))
        if not args.data:
            children["closed_loop"] = _cinerec("simulate", "--closed-loop", "--rate", str(DEMO_CLOSED_LOOP_RATE),
                                               "--duration", lasting, *drifting)
    try:
        _prepare(settings, args.data)
        children["stream"] = _cinerec("stream")
        children["serve"] = _cinerec("serve")
        people(0.0)
        children["online"] = _cinerec("online")
        if monitoring.missing():
            print(f"cinerec demo: no Prometheus: {monitoring.missing()}", file=sys.stderr, flush=True)
        else:
            children.update(zip(("prometheus", "alertmanager"), monitoring.start(
                settings, api_key, speedup=demo_loop.SPEEDUP if args.loop else 1)))
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
                         "  retraining: `cinerec retrain --now`; UI: .venv/bin/dagster dev -m cli.pipeline",
                         "Ctrl-C stops everything the demo started."]), file=sys.stderr, flush=True)
        if args.loop:
            print_json(demo_loop.run(settings, people, healthy=lambda: _check_children(children)))
        else:
            deadline = time.monotonic() + args.duration if args.duration else None
            while deadline is None or time.monotonic() < deadline:
                _check_children(children)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(list(children.values())):
            _stop(child)
        _stop_retraining(settings)
        if started_services:
            svc.down(settings)
    print("cinerec demo: stopped", file=sys.stderr)
    return 0


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
    """The loop cannot go on without the job and the API."""
    for role in ("stream", "serve"):
        if children[role].poll() is not None:
            raise RuntimeError(f"`cinerec {role}` exited with {children[role].returncode}")


def _stop_retraining(settings: Settings) -> None:
    """A retraining the alert webhook started runs in its own session: stopped with the demo."""
    pid_file = Path(settings.services.data_dir) / "retrain.pid"
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _prepare(settings: Settings, data: Path | None) -> None:
    """Whatever the loop still lacks: a world, a champion trained on ``data`` (a MovieLens history:
    on its first ``DEMO_CUT`` by time, the rest is what the demo replays), indices."""
    champion = Registry(settings).version(CHAMPION)
    if data is None and champion is None:
        if not (world_dir(settings) / "ratings.csv").exists():
            _run("data", "generate")
        data = world_dir(settings)
    elif data is not None:
        cut = cut_dir(settings, data, DEMO_CUT)
        if not (cut / "ratings.csv").exists():
            _run("data", "cut", str(data), "--fraction", str(DEMO_CUT))
        data = cut
    if data is not None and (champion is None or Path(champion.tags["data_path"]) != data.resolve()):
        _run("train", "--data", str(data), "--param", f"rank={DEMO_RANK}")
        _run("promote", check=False)                  # a refusal keeps the current champion
        _run("index")
    elif not all(connect(settings.elasticsearch).indices.exists_alias(name=a) for a in (FILMS, FILM_LISTS)):
        _run("index")


def _cinerec(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], start_new_session=True)


def _run(*args: str, check: bool = True) -> None:
    print(f"cinerec demo: cinerec {' '.join(args)}", file=sys.stderr, flush=True)
    if subprocess.run([sys.executable, "-m", "cli.main", *args]).returncode != 0 and check:
        raise RuntimeError(f"`cinerec {' '.join(args)}` failed")


def _stop(child: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the child, which stops what it runs (Spark's JVM included) and exits; SIGKILL to
    its whole process group after ``grace_s``. Signalling the group at once would kill the JVM
    under the driver's feet and fill the log with its stack traces."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(child.pid, signal.SIGKILL)             # whatever is left of the group
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


# -- bench freshness --------------------------------------------------------------------------

def bench_freshness(settings: Settings, args: argparse.Namespace) -> int:
    """Seconds from producing a rating until GET /users/<id>/recommendations is based on it."""
    svc.require_kafka(settings.kafka)
    base = args.url or f"http://{settings.api.host}:{settings.api.port}"
    tastes = load_or_generate_tastes(settings)
    load = threading.Thread(target=publish, daemon=True, kwargs=dict(
        kafka=settings.kafka, messages=simulated_messages(tastes, seed=int(time.time()), rate=args.rate),
        topic=settings.kafka.ratings_topic, duration_s=args.duration))
    load.start()
    from confluent_kafka import Producer

    producer = Producer(producer_config(settings.kafka))
    results: list[float | None] = []
    probes: list[threading.Thread] = []
    rng = np.random.default_rng()
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        user = PROBE_USER_BASE + len(probes)
        event = RatingEvent(str(uuid.uuid4()), user, int(rng.choice(tastes.movie_id)), 4.0,
                            int(time.time() * 1000), "api")
        sent_at = time.monotonic()
        producer.produce(settings.kafka.ratings_topic, key=event.key, value=event.to_json())
        producer.poll(0)
        probe = threading.Thread(target=lambda u=user, e=event, t=sent_at: results.append(
            _await_reflected(base, u, e.ts, t, args.timeout)), daemon=True)
        probe.start()
        probes.append(probe)
        time.sleep(1.0 / args.probes_per_s)
    producer.flush(10)
    load.join(args.duration + 30)
    for probe in probes:
        probe.join(args.timeout + 5)
    _forget_probe_users(settings, len(probes))
    seen = np.array([r for r in results if r is not None])
    print_json({"rate": args.rate, "duration_s": args.duration, "probes": len(probes), "reflected": len(seen),
                "timed_out": len(results) - len(seen),
                **({f"p{q}_s": round(float(np.percentile(seen, q)), 3) for q in (50, 95, 99)} if len(seen) else {}),
                "max_s": round(float(seen.max()), 3) if len(seen) else None})
    return 0


def _await_reflected(base: str, user: int, ts: int, sent_at: float, timeout_s: float) -> float | None:
    """Polls the user's recommendations until they are based on the rating at ``ts``."""
    url = f"{base}/users/{user}/recommendations?k=5"
    while time.monotonic() - sent_at < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if (json.load(response)["based_on"]["last_rating_ts"] or 0) >= ts:
                    return time.monotonic() - sent_at
        except urllib.error.HTTPError as err:
            if err.code != 404:                        # 404: the user is not indexed yet
                raise
        except (urllib.error.URLError, TimeoutError):
            pass
        time.sleep(0.1)
    return None


def _forget_probe_users(settings: Settings, count: int) -> None:
    """Probe users are not people: remove their documents after the benchmark."""
    es = connect(settings.elasticsearch)
    for i in range(count):
        es.options(ignore_status=404).delete(index=USERS, id=str(PROBE_USER_BASE + i))


# -- bench throughput -------------------------------------------------------------------------

def bench_throughput(settings: Settings, args: argparse.Namespace) -> int:
    """The highest rate the running job sustains for ``duration`` seconds without growing lag.

    Lag = records produced to the topic since the step began − records the job finished (its
    accepted + dead counters, which move when a micro-batch completes), so a stalled batch shows
    as growing lag."""
    svc.require_kafka(settings.kafka)
    metrics_url = args.metrics_url or f"http://127.0.0.1:{settings.streaming.metrics_port}/metrics"
    _job_metrics(metrics_url)                          # fails early when the job is not running
    tastes = load_or_generate_tastes(settings)
    topic = settings.kafka.ratings_topic
    offsets = Consumer({**settings.kafka.client_config(), "group.id": f"cinerec-bench-{uuid.uuid4().hex}"})

    def produced_total() -> int:
        return sum(end_offsets(settings.kafka, topic, consumer=offsets).values())

    steps, best, peak = [], 0, 0.0
    for rate in args.rates:
        _drain(metrics_url, timeout_s=args.duration * 2)
        produced0, finished0 = produced_total(), _job_metrics(metrics_url)["finished"]
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        load = threading.Thread(target=publish, daemon=True, kwargs=dict(
            kafka=settings.kafka, messages=simulated_messages(tastes, seed=rate, rate=rate),
            topic=topic, duration_s=args.duration))
        load.start()
        while load.is_alive():
            time.sleep(1.0)
            values = _job_metrics(metrics_url)
            produced = produced_total() - produced0
            samples.append((time.monotonic() - started, produced - (values["finished"] - finished0)))
            peak = max(peak, values["memory"])
        half = [s for s in samples if s[0] >= args.duration / 2] or samples
        slope = float(np.polyfit([t for t, _ in half], [lag for _, lag in half], 1)[0]) if len(half) > 1 else 0.0
        sustained = slope <= 0.05 * rate
        steps.append({"rate": rate, "lag_end": samples[-1][1] if samples else None,
                      "lag_growth_per_s": round(slope, 1), "sustained": sustained})
        print(json.dumps(steps[-1]), file=sys.stderr, flush=True)
        if not sustained:
            break
        best = rate
    offsets.close()
    print_json({"duration_s": args.duration, "sustained_events_per_s": best, "steps": steps,
                "job_peak_memory_mb": round(peak / 2**20, 1)})
    return 0


def _job_metrics(url: str) -> dict:
    """Input lag (as of the last micro-batch), records finished and memory, from the job's
    Prometheus endpoint."""
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except (urllib.error.URLError, OSError) as err:
        raise svc.ServiceError(f"no streaming job metrics at {url} ({err}); start `cinerec stream` "
                               "(or `cinerec demo`) first") from None
    lag = memory = finished = 0.0
    for line in text.splitlines():
        if line.startswith("cinerec_stream_input_lag{"):
            lag += float(line.rsplit(" ", 1)[1])
        elif line.startswith("cinerec_stream_memory_bytes "):
            memory = float(line.rsplit(" ", 1)[1])
        elif line.startswith(('cinerec_stream_events_total{outcome="accepted"}',
                              'cinerec_stream_events_total{outcome="dead"}')):
            finished += float(line.rsplit(" ", 1)[1])
    return {"lag": lag, "memory": memory, "finished": finished}


def _drain(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _job_metrics(url)["lag"] > 0 and time.monotonic() < deadline:
        time.sleep(1.0)


def add_parsers(sub, bench_sub) -> None:
    demo = sub.add_parser("demo", help="run the whole loop: stream, API and simulator (Ctrl-C or --duration stops it)")
    demo.add_argument("--duration", type=float, help="stop everything after this many seconds and exit 0")
    demo.add_argument("--rate", type=float, default=200.0, help="simulated events per second (default 200)")
    demo.add_argument("--data", type=Path, help="a MovieLens directory: train on it and replay it instead")
    demo.add_argument("--replay-rate", type=float, default=100.0,
                      help="with --data: replayed events per second (default 100)")
    demo.add_argument("--loop", action="store_true",
                      help="the operations loop as a timeline: baseline, drift, alert, retraining, canary, "
                           "recovery (synthetic world, needs Prometheus); exits when the timeline ends")
    demo.set_defaults(run=demo_command)

    fresh = bench_sub.add_parser("freshness", help="seconds from a rating to recommendations based on it (JSON)")
    fresh.add_argument("--rate", type=float, default=2000.0, help="background events per second (default 2000)")
    fresh.add_argument("--duration", type=float, default=30.0)
    fresh.add_argument("--probes-per-s", type=float, default=1.0, help="probe ratings per second (default 1)")
    fresh.add_argument("--timeout", type=float, default=30.0, help="give up on a probe after this many seconds")
    fresh.add_argument("--url", help="API base URL (default: http://<api.host>:<api.port>)")
    fresh.set_defaults(run=bench_freshness)

    through = bench_sub.add_parser("throughput", help="highest rate the running job sustains without growing lag")
    through.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                         default=[500, 1000, 2000, 5000, 10000, 20000], help="comma-separated steps")
    through.add_argument("--duration", type=float, default=60.0, help="seconds per step (default 60)")
    through.add_argument("--metrics-url", help="the job's /metrics (default: 127.0.0.1:<streaming.metrics_port>)")
    through.set_defaults(run=bench_throughput)

    bench_onboarding.add_parser(bench_sub)

"""The benchmarks behind `cinerec bench …`; each returns its figures as a dict (printed as JSON).

    produce      events/s the broker acknowledges at full speed (a scratch topic)
    api          latency percentiles of the title and user routes at a fixed request rate (open loop)
    wrk          each route under wrk (Debian's HTTP load generator), side by side in one run, and its
                 throughput as a fraction of ``GET /films/<id>`` (one GET by id: the floor of this stack)
    freshness    seconds from a rating to recommendations based on it, among simulated load
    throughput   the highest rate the running job sustains without growing lag, and what each process
                 (Spark's JVM, its Python workers, the job's driver, Elasticsearch, Kafka) spends on it
    onboarding   seconds from a new person's picks to recommendations based on them
The API benchmarks need `cinerec serve` (or `cinerec demo`); freshness and throughput the job too.
Real titles, user ids and search prefixes come from the indices.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import numpy as np
from elasticsearch import Elasticsearch

from cinerec.core.errors import ServiceError
from cinerec.core.events import RatingEvent
from cinerec.core.privacy import PURPOSES
from cinerec.core.settings import Settings, as_env
from cinerec.platform.elasticsearch import connect
from cinerec.platform.kafka import (
    BULK,
    delete_topics,
    end_offsets,
    ensure_topics,
    new_consumer,
    new_producer,
    require_kafka,
)
from cinerec.search.queries import USERS
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.world import load_or_generate_tastes

from .processes import Usage
from .services._process import free_port

FLOOR = "film_by_id"
BARE = "bare_flask"
PROBE_USER_BASE = 900_000_000          # probe users of the freshness benchmark: ids no dataset uses


def api_url(settings: Settings) -> str:
    return f"http://{settings.api.host}:{settings.api.port}"


# -- produce ----------------------------------------------------------------------------------

def produce(settings: Settings, *, duration_s: float) -> dict:
    """Events/s the broker acknowledges at full speed, on a scratch topic (deleted afterwards)."""
    require_kafka(settings.kafka)
    topic = f"{settings.kafka.ratings_topic}.bench"
    bench_kafka = settings.replace(kafka__ratings_topic=topic, kafka__dlq_topic=f"{topic}.dlq").kafka
    ensure_topics(bench_kafka)
    try:
        tastes = load_or_generate_tastes(settings)
        messages = simulated_messages(tastes, seed=settings.simulator.seed, rate=0.0)
        summary = publish(settings.kafka, messages, topic=topic, duration_s=duration_s)
    finally:
        delete_topics(bench_kafka, [topic, f"{topic}.dlq"])
    return {"benchmark": "produce", "events_per_s": summary["achieved_rate"],
                "acknowledged": summary["sent"], "failed": summary["failed"],
                "seconds": summary["duration_s"], "acks": settings.kafka.acks,
                "partitions": summary["partitions"]}


# -- api and wrk ------------------------------------------------------------------------------

def api_latency(settings: Settings, *, duration_s: float, rps: float, url: str | None = None) -> dict:
    """GET /recommendations?title= and GET /users/<id>/recommendations alternately at ``rps``."""
    routes = route_paths(connect(settings.elasticsearch))
    paths = [p for pair in zip(routes["title"], routes["user"]) for p in pair]
    base = url or api_url(settings)
    return {"benchmark": "api", "url": base, "duration_s": duration_s,
            **open_loop(base, paths, duration_s=duration_s, rps=rps)}


def wrk_routes(settings: Settings, *, duration_s: float, connections: int, threads: int,
               url: str | None = None, bare: bool = False) -> dict:
    """Each route under wrk, one after the other, with its ratio to the floor and the share of its
    lookups the API's caches answered. ``bare``: also a bare Flask route that returns a constant
    film under the same server settings (`cinerec serve --constant` on a free port): the framework's
    limit on this machine, and the floor's ratio to it."""
    base = url or api_url(settings)
    routes = bench_routes(base, route_paths(connect(settings.elasticsearch)), duration_s=duration_s,
                          connections=connections, threads=threads)
    if bare:
        with constant_server(settings) as bare_url:
            routes[BARE] = run_wrk(bare_url, [f"/films/{i}" for i in range(1, 201)], duration_s=duration_s,
                                   connections=connections, threads=threads)
        bare_rps, floor_rps = routes[BARE]["requests_per_s"] or 1.0, routes[FLOOR]["requests_per_s"] or 1.0
        routes[BARE]["of_film_by_id"] = round(bare_rps / floor_rps, 3)
        routes[FLOOR]["of_bare_flask"] = round(floor_rps / bare_rps, 3)
    api = settings.api
    return {"benchmark": "wrk", "url": base, "duration_s": duration_s, "connections": connections,
            "threads": threads, "server": f"gunicorn {api.workers} {api.worker_class} workers x {api.threads} threads",
            "routes": routes}


@contextmanager
def constant_server(settings: Settings):
    """`cinerec serve --constant` on a free port (the API's server settings) for the duration."""
    port = free_port(settings.api.host)
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, **as_env(settings.replace(api__port=port, services__data_dir=data_dir))}
        server = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "serve", "--constant"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://{settings.api.host}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/", timeout=1).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("`cinerec serve --constant` did not start") from None
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def route_paths(es: Elasticsearch, count: int = 200) -> dict[str, list[str]]:
    """Paths of the benchmarked routes, from the films and users the indices hold."""
    films = [h["_source"] for h in es.search(
        index="film_stats", size=count, query={"range": {"like_count": {"gte": 1}}}, sort=[{"rating_count": "desc"}],
        source=["movie_id", "title", "year"])["hits"]["hits"]]  # type: ignore[arg-type]  # stub omits field lists
    users = [h["_source"]["user_id"] for h in es.search(
        index="users", size=count, query={"exists": {"field": "vector"}},
        source=["user_id"])["hits"]["hits"]]  # type: ignore[arg-type]  # stub omits field lists
    if not films or not users:
        raise LookupError("the films/users indices are empty: run `cinerec index` first")
    titles = [f"{f['title']} ({f['year']})" if f.get("year") else f["title"] for f in films]
    return {"title": [f"/recommendations?title={quote(t)}" for t in titles],
            "user": [f"/users/{u}/recommendations" for u in users],
            "search": [f"/films?q={quote(f['title'][:4].strip())}" for f in films],
            FLOOR: [f"/films/{f['movie_id']}" for f in films]}


def one_at_a_time(settings: Settings, base_url: str, *, per_route: int = 50, wait_s: float = 60.0) -> dict:
    """Median and slowest latency (ms) of each benchmarked route, one request at a time over
    ``per_route`` different films or users (the first time each is asked: the caches are cold).
    Waits up to ``wait_s`` for the API to answer first."""
    routes = route_paths(connect(settings.elasticsearch), count=per_route)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            urllib.request.urlopen(base_url + routes[FLOOR][0], timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    figures = {}
    for name, paths in routes.items():
        seconds = []
        for path in paths[:per_route]:
            started = time.perf_counter()
            urllib.request.urlopen(base_url + path, timeout=10).read()
            seconds.append(time.perf_counter() - started)
        figures[name] = {"p50_ms": round(1000 * statistics.median(seconds), 1),
                         "max_ms": round(1000 * max(seconds), 1)}
    return figures


def run_wrk(base_url: str, paths: list[str], *, duration_s: float, connections: int, threads: int) -> dict:
    wrk = shutil.which("wrk")
    if not wrk:
        raise FileNotFoundError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(_lua(paths))
        result = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--latency",
                                 "-s", str(script), base_url], capture_output=True, text=True,
                                timeout=duration_s + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr.strip()[:300]}")
    return parse_wrk(result.stdout)


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles (ms) and errors from wrk's ``--latency`` report."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    percentiles = {f"p{p}_ms": round(float(v) * units[u], 2)
                   for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"requests_per_s": float(_group(r"Requests/sec:\s+([\d.]+)", output)),
            "requests": int(requests[1]) if requests else 0, **percentiles,
            "errors": (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)}


def _group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text``; ValueError when it does not match."""
    found = re.search(pattern, text)
    if found is None:
        raise ValueError(f"no {pattern!r} in {text[:200]!r}")
    return found[1]


def bench_routes(base_url: str, routes: dict[str, list[str]], *, duration_s: float, connections: int,
                 threads: int) -> dict:
    results = {}
    for name, paths in routes.items():
        before = cache_lookups(base_url)
        results[name] = run_wrk(base_url, paths, duration_s=duration_s, connections=connections, threads=threads)
        after = cache_lookups(base_url)
        hits, misses = (after.get(o, 0) - before.get(o, 0) for o in ("hit", "miss"))
        results[name]["cache_hit_ratio"] = round(hits / (hits + misses), 3) if hits + misses else None
    floor = results[FLOOR]["requests_per_s"] or 1.0
    for report in results.values():
        report["of_film_by_id"] = round(report["requests_per_s"] / floor, 3)
    return results


def cache_lookups(base_url: str) -> dict[str, float]:
    """Lookups in the API's in-process caches so far, by outcome, from its /metrics."""
    text = urllib.request.urlopen(base_url + "/metrics", timeout=10).read().decode()
    totals: dict[str, float] = {}
    for outcome, value in re.findall(r'^cinerec_api_cache_lookups_total\{[^}]*outcome="(\w+)"[^}]*\} ([\d.e+]+)$',
                                     text, re.M):
        totals[outcome] = totals.get(outcome, 0.0) + float(value)
    return totals


def _lua(paths: list[str]) -> str:
    quoted = ",\n".join(f'  "{p}"' for p in paths)
    return ("paths = {\n" + quoted + "\n}\ncounter = 0\n"
            "request = function()\n  counter = counter + 1\n"
            "  return wrk.format(\"GET\", paths[(counter % #paths) + 1])\nend\n")


def open_loop(base_url: str, paths: list[str], *, duration_s: float, rps: float, threads: int = 16) -> dict:
    """Sends ``rps`` requests per second (open loop, round robin over ``paths``) for ``duration_s``;
    latency is measured from each request's scheduled time, so queueing counts against the server."""
    url = urllib.parse.urlsplit(base_url)
    host, port = url.hostname, url.port
    assert host is not None, f"not an http://host:port URL: {base_url}"
    total = int(duration_s * rps)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    next_index = iter(range(total))

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            due = start + i / rps
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status: int | str
            for _attempt in (1, 2):  # a kept-alive connection the server closed is retried once, fresh
                try:
                    connection.request("GET", paths[i % len(paths)])
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException) as err:
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=10)
                    status = type(err).__name__
                    if not isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                        break
            elapsed = time.perf_counter() - due
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pct = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None  # noqa: E731
    return {"requests": len(latencies), "target_rps": rps, "throughput_rps": round(len(latencies) / wall, 1),
            "errors": sum(errors.values()), "error_statuses": errors, "p50_ms": pct(0.50), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "mean_ms": round(1000 * statistics.fmean(ordered), 2) if ordered else None}


# -- freshness ---------------------------------------------------------------------------------

def freshness(settings: Settings, *, rate: float, duration_s: float, probes_per_s: float, timeout_s: float,
              url: str | None = None) -> dict:
    """Seconds from producing a rating until GET /users/<id>/recommendations is based on it, with
    ``rate`` simulated events per second around the probes."""
    require_kafka(settings.kafka)
    base = url or api_url(settings)
    tastes = load_or_generate_tastes(settings)
    load = threading.Thread(target=publish, daemon=True, kwargs=dict(
        kafka=settings.kafka, messages=simulated_messages(tastes, seed=int(time.time()), rate=rate),
        topic=settings.kafka.ratings_topic, duration_s=duration_s))
    load.start()
    producer = new_producer(settings.kafka, BULK)
    results: list[float | None] = []
    probes: list[threading.Thread] = []
    rng = np.random.default_rng()
    started = time.monotonic()
    while time.monotonic() - started < duration_s:
        user = PROBE_USER_BASE + len(probes)
        event = RatingEvent(str(uuid.uuid4()), user, int(rng.choice(tastes.movie_id)), 4.0,
                            int(time.time() * 1000), "api")
        sent_at = time.monotonic()
        producer.produce(settings.kafka.ratings_topic, key=event.key, value=event.to_json())
        producer.poll(0)
        probe = threading.Thread(target=lambda u=user, e=event, t=sent_at: results.append(
            _await_reflected(base, u, e.ts, t, timeout_s)), daemon=True)
        probe.start()
        probes.append(probe)
        time.sleep(1.0 / probes_per_s)
    producer.flush(10)
    load.join(duration_s + 30)
    for probe in probes:
        probe.join(timeout_s + 5)
    _forget_probe_users(settings, len(probes))
    seen = np.array([r for r in results if r is not None])
    return {"benchmark": "freshness", "rate": rate, "duration_s": duration_s, "probes": len(probes),
            "reflected": len(seen), "timed_out": len(results) - len(seen),
            **({f"p{q}_s": round(float(np.percentile(seen, q)), 3) for q in (50, 95, 99)} if len(seen) else {}),
            "max_s": round(float(seen.max()), 3) if len(seen) else None}


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


# -- throughput --------------------------------------------------------------------------------

def throughput(settings: Settings, *, rates: list[int], duration_s: float, metrics_url: str | None = None) -> dict:
    """The highest rate the running job sustains for ``duration`` seconds without growing lag.

    Lag = records produced to the topic since the step began − records the job finished (its
    accepted + dead counters, which move when a micro-batch completes), so a stalled batch shows
    as growing lag."""
    require_kafka(settings.kafka)
    metrics_url = metrics_url or f"http://127.0.0.1:{settings.streaming.metrics_port}/metrics"
    _job_metrics(metrics_url)                          # fails early when the job is not running
    tastes = load_or_generate_tastes(settings)
    topic = settings.kafka.ratings_topic
    offsets = new_consumer(settings.kafka, f"cinerec-bench-{uuid.uuid4().hex}")

    def produced_total() -> int:
        return sum(end_offsets(settings.kafka, topic, consumer=offsets).values())

    steps, best, peak = [], 0, 0.0
    for rate in rates:
        _drain(metrics_url, timeout_s=duration_s * 2)
        produced0, finished0 = produced_total(), _job_metrics(metrics_url)["finished"]
        samples: list[tuple[float, float]] = []
        usage = Usage()                                    # CPU and memory of each process during the step
        started = time.monotonic()
        load = threading.Thread(target=publish, daemon=True, kwargs=dict(
            kafka=settings.kafka, messages=simulated_messages(tastes, seed=rate, rate=rate),
            topic=topic, duration_s=duration_s))
        load.start()
        while load.is_alive():
            time.sleep(1.0)
            values = _job_metrics(metrics_url)
            usage.sample()
            produced = produced_total() - produced0
            samples.append((time.monotonic() - started, produced - (values["finished"] - finished0)))
            peak = max(peak, values["memory"])
        half = [s for s in samples if s[0] >= duration_s / 2] or samples
        slope = float(np.polyfit([t for t, _ in half], [lag for _, lag in half], 1)[0]) if len(half) > 1 else 0.0
        sustained = slope <= 0.05 * rate
        finished = _job_metrics(metrics_url)["finished"] - finished0
        steps.append({"rate": rate, "lag_end": samples[-1][1] if samples else None,
                      "lag_growth_per_s": round(slope, 1), "sustained": sustained, "events_finished": int(finished),
                      "cpu_s_per_1000_events": {role: round(1000 * seconds / finished, 3) if finished else None
                                                for role, seconds in usage.cpu_seconds().items()},
                      "peak_memory_mb": usage.peak_mb()})
        print(json.dumps(steps[-1]), file=sys.stderr, flush=True)
        if not sustained:
            break
        best = rate
    offsets.close()
    return {"benchmark": "throughput", "duration_s": duration_s, "sustained_events_per_s": best, "steps": steps,
                "job_peak_memory_mb": round(peak / 2**20, 1)}


def _job_metrics(url: str) -> dict:
    """Input lag (as of the last micro-batch), records finished and memory, from the job's
    Prometheus endpoint."""
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except (urllib.error.URLError, OSError) as err:
        raise ServiceError(f"no streaming job metrics at {url} ({err}); start `cinerec stream` "
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


# -- onboarding --------------------------------------------------------------------------------

def one_person(base: str, picks: int, timeout_s: float) -> float | None:
    """Signs a new person up (consenting to every purpose: personal recommendations need it),
    submits the first ``picks`` proposals, polls until their personal list is ready."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def page(path: str, form: dict | None = None) -> str:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        with browser.open(f"{base}{path}", data=data, timeout=30) as response:
            return response.read().decode()

    token = lambda html: _group(r'name="csrf-token" content="([^"]+)"', html)  # noqa: E731
    signup = page("/signup")
    start = page("/signup", {"email": f"bench-{uuid.uuid4().hex[:12]}@example.org", "password": "bench password",
                             "csrf_token": token(signup), **{f"consent_{p}": "yes" for p in PURPOSES}})
    chosen = list(dict.fromkeys(re.findall(r'<li data-movie="(\d+)"', start)))[:picks]
    submitted = time.monotonic()
    page("/start", {"movie_id": chosen, "csrf_token": token(start)})
    while time.monotonic() - submitted < timeout_s:
        body = json.loads(page("/me/recommendations.json"))
        if body["status"] == "ready" and len(body["results"]) >= picks:
            return time.monotonic() - submitted
        time.sleep(0.05)
    return None


def onboarding(settings: Settings, *, tries: int, timeout_s: float, url: str | None = None) -> dict:
    """Seconds from submitting the picks to recommendations based on them, over ``tries`` new accounts."""
    base = url or api_url(settings)
    waits = [one_person(base, settings.web.picks, timeout_s) for _ in range(tries)]
    done = sorted(w for w in waits if w is not None)
    q = (lambda p: round(statistics.quantiles(done, n=100)[p - 1], 3) if len(done) > 1 else  # noqa: E731
         (round(done[0], 3) if done else None))
    return {"benchmark": "onboarding", "url": base, "tries": tries, "ready": len(done),
            "timed_out": tries - len(done), "p50_s": q(50), "p95_s": q(95),
            "max_s": round(done[-1], 3) if done else None}

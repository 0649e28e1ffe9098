"""`cinerec serve` (gunicorn) and `cinerec bench api` (an open-loop load generator)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from core.settings import Settings


def serve(settings: Settings, duration_s: float | None = None) -> None:
    """gunicorn with gthread workers; Prometheus samples shared through a multiprocess dir.
    Stops on SIGINT/SIGTERM (gunicorn's graceful stop) or after ``duration_s``, with one line."""
    metrics_dir = Path(settings.services.data_dir) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())  # before the app is imported

    from gunicorn.app.base import BaseApplication

    from api.web.accounts import create_schema
    create_schema(settings)

    api = settings.api

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{api.host}:{api.port}", "workers": api.workers,
                               "threads": api.threads, "worker_class": "gthread", "accesslog": None, "keepalive": 5,
                               # gunicorn's longest request line: beyond it gunicorn answers in HTML, so
                               # the app's JSON 414 (api.max_query_bytes) must come well before it
                               "limit_request_line": 8190,
                               "child_exit": _child_exit, "loglevel": "warning"}.items():
                self.cfg.set(key, value)

        def load(self):
            from api import create_app
            return create_app(settings)

    if duration_s:
        timer = threading.Timer(duration_s, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()
    print(f"serve: http://{api.host}:{api.port} ({api.workers} workers x {api.threads} threads)",
          file=sys.stderr, flush=True)
    try:
        Server().run()
    except SystemExit as stop:
        print("serve: stopped", file=sys.stderr, flush=True)
        if stop.code:
            raise


def _child_exit(server, worker) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def bench_api(base_url: str, paths: list[str], *, duration_s: float, rps: float, threads: int = 16) -> dict:
    """Sends ``rps`` requests per second (open loop, round robin over ``paths``) for ``duration_s``;
    latency is measured from each request's scheduled time, so queueing counts against the server."""
    url = urllib.parse.urlsplit(base_url)
    total = int(duration_s * rps)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    next_index = iter(range(total))

    def worker() -> None:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            due = start + i / rps
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for _attempt in (1, 2):  # a kept-alive connection the server closed is retried once, fresh
                try:
                    connection.request("GET", paths[i % len(paths)])
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException) as err:
                    connection.close()
                    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
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

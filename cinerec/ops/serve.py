"""The API under gunicorn (`cinerec serve`). Not in ``api``: importing that package loads the app,
and Prometheus' multiprocess directory must be set before it is."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from cinerec.core.settings import Settings
from cinerec.ops.services._process import require_free_port

CONSTANT_FILM = {"movie_id": 1, "title": "Toy Story", "year": 1995,
                 "genres": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"], "rating_count": 215,
                 "rating_mean": 3.92, "bayesian_avg": 3.90, "like_count": 147, "tags": "pixar fun"}


def serve(settings: Settings, duration_s: float | None = None, *, constant: bool = False) -> None:
    """gunicorn (workers of class api.worker_class); Prometheus samples shared through a multiprocess
    dir. Stops on SIGINT/SIGTERM (gunicorn's graceful stop) or after ``duration_s``, with one line.
    ``constant``: instead of the API, a bare Flask app that answers every path with one constant
    film, under the same server settings: the framework's own limit, which `bench wrk` reports
    next to the API's routes. A port held by another process is one line naming it, not gunicorn's
    endless retries."""
    require_free_port(settings.api.port, "the API (api.port)")
    metrics_dir = Path(settings.services.data_dir) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())  # before the app is imported

    from gunicorn.app.base import BaseApplication

    if not constant:
        from cinerec.platform.accounts import create_schema
        create_schema(settings)

    api = settings.api

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{api.host}:{api.port}", "workers": api.workers,
                               "threads": api.threads, "worker_class": api.worker_class,
                               "accesslog": None, "keepalive": 5,
                               # gunicorn's longest request line: beyond it gunicorn answers in HTML, so
                               # the app's JSON 414 (api.max_query_bytes) must come well before it
                               "limit_request_line": 8190,
                               "child_exit": _child_exit, "loglevel": "warning"}.items():
                self.cfg.set(key, value)

        def load(self):
            if constant:
                return constant_app()
            from threadpoolctl import threadpool_limits

            from cinerec.api import create_app

            # One BLAS thread per worker: requests already run in parallel on the workers' threads, and
            # a served model's matrix-vector product split over threads only contends for the same cores
            # (a rank-512 hybrid's scores took 8 ms with the default threads, 2 ms with one, under load).
            threadpool_limits(1)
            return create_app(settings)

    if duration_s:
        timer = threading.Timer(duration_s, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()
    print(f"serve: http://{api.host}:{api.port} ({api.workers} {api.worker_class} workers x {api.threads} threads)"
          + (" answering a constant film" if constant else ""), file=sys.stderr, flush=True)
    try:
        Server().run()
    except SystemExit as stop:
        print("serve: stopped", file=sys.stderr, flush=True)
        if stop.code:
            raise


def constant_app():
    from flask import Flask, jsonify

    app = Flask(__name__)

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def film(path: str):
        return jsonify(CONSTANT_FILM)

    return app


def _child_exit(server, worker) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)

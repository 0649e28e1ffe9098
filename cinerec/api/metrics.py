"""Prometheus metrics of the API: requests and latency per route and status.

Under gunicorn, ``cinerec serve`` sets PROMETHEUS_MULTIPROC_DIR before the app is imported,
so every worker writes its samples there and ``/metrics`` adds them up across workers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("cinerec_http_requests_total", "HTTP requests by route, method and status",
                   ["route", "method", "status"])
VARIANT_REQUESTS = Counter("cinerec_variant_requests_total", "Per-user recommendation requests by model variant "
                           "(champion, challenger) and outcome (ok, error)", ["variant", "outcome"])
LATENCY = Histogram("cinerec_http_request_seconds", "HTTP request latency by route",
                    ["route", "method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))


def install(app: Flask) -> None:
    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    # each label set's child, looked up once per process
    latency: dict[tuple[str, str], Histogram] = {}
    requests: dict[tuple[str, str, str], Counter] = {}

    @app.after_request
    def record(response):
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        if route != "/metrics":
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            labels = (route, request.method)
            child = latency.get(labels) or latency.setdefault(labels, LATENCY.labels(*labels))
            child.observe(elapsed)
            labels = (route, request.method, str(response.status_code))
            child = requests.get(labels) or requests.setdefault(labels, REQUESTS.labels(*labels))
            child.inc()
        return response


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

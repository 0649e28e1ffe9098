"""Local services: start/stop the embedded Kafka broker and Elasticsearch node, check both, create topics.

Embedded mode runs the real engines (``engines.py``) under ``<data_dir>`` on the host and ports
named by the Kafka and Elasticsearch settings. External mode starts nothing and only checks.
Ready means a produce/consume round trip on Kafka and a green or yellow cluster health.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cinerec.core.errors import ServiceError
from cinerec.core.settings import Settings
from cinerec.platform.elasticsearch import cluster_health
from cinerec.platform.kafka import delete_topics, ensure_topics, kafka_health, require_kafka

from . import _process, engines

__all__ = ["ServiceError", "delete_topics", "down", "ensure_topics", "kafka_health", "require_kafka",
           "status", "up"]


def up(settings: Settings) -> dict:
    """Starts the embedded engines (if embedded), waits until both are healthy, creates topics."""
    started = time.monotonic()
    if settings.services.mode == "embedded":
        engines.check_endpoints(settings)
        # The broker starts in the background while Elasticsearch's launcher waits for its node.
        engines.start_kafka(settings)
        engines.start_elasticsearch(settings)
    deadline = started + settings.services.start_timeout_s
    while True:
        report = status(settings)
        if report["kafka"]["healthy"] and report["elasticsearch"]["healthy"]:
            break
        if time.monotonic() > deadline:
            broken = [f"{name}: {report[name].get('error', 'unhealthy')}"
                      for name in ("kafka", "elasticsearch") if not report[name]["healthy"]]
            raise ServiceError(f"services not healthy after {settings.services.start_timeout_s:g}s "
                               f"({'; '.join(broken)})")
        time.sleep(0.5)
    report["topics"] = ensure_topics(settings.kafka)
    report["ready_s"] = round(time.monotonic() - started, 1)
    return report


def down(settings: Settings) -> dict:
    if settings.services.mode != "embedded":
        return {"mode": "external", "stopped": False, "note": "external services are not ours to stop"}
    with ThreadPoolExecutor(2) as pool:
        kafka = pool.submit(_process.stop, engines.kafka_dir(settings) / "kafka.pid")
        elastic = pool.submit(_process.stop, engines.elasticsearch_dir(settings) / "elasticsearch.pid")
        stopped = {"kafka": kafka.result(), "elasticsearch": elastic.result()}
    return {"mode": "embedded", "stopped": any(stopped.values()), "was_running": stopped,
            "data_dir": str(settings.services.data_dir)}


def status(settings: Settings) -> dict:
    report: dict[str, Any] = {"mode": settings.services.mode,
                              "kafka": {"endpoint": settings.kafka.bootstrap_servers, **kafka_health(settings.kafka)},
                              "elasticsearch": {"endpoint": settings.elasticsearch.url,
                                                **cluster_health(settings.elasticsearch)}}
    if settings.services.mode == "embedded":
        for name, pid_file in (("kafka", engines.kafka_dir(settings) / "kafka.pid"),
                               ("elasticsearch", engines.elasticsearch_dir(settings) / "elasticsearch.pid")):
            pid = _process.read_pid(pid_file)
            report[name].update(pid=pid, resident_mib=_process.resident_mib(pid), folder=str(pid_file.parent))
    return report

"""`cinerec demo --duration`: the whole loop on the test services, then everything it started is
gone, it exits 0 and its output has no stack trace."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cinerec.ops.services._process import free_port

pytestmark = [pytest.mark.services, pytest.mark.spark]


def processes_with(marker: str) -> list[int]:
    """Processes whose environment names ``marker`` (the demo's data dir)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_demo_runs_stream_api_and_simulator_then_stops_them(settings, fresh_indices, tmp_path):
    data_dir, api_port = tmp_path / "demo-var", free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CINEREC_")},
           "CINEREC_SERVICES__DATA_DIR": str(data_dir),
           "CINEREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "CINEREC_KAFKA__RATINGS_TOPIC": settings.kafka.ratings_topic,
           "CINEREC_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
           "CINEREC_ELASTICSEARCH__URL": settings.elasticsearch.url,
           "CINEREC_API__PORT": str(api_port), "CINEREC_STREAMING__METRICS_PORT": str(free_port()),
           "CINEREC_OPS__DAGSTER_PORT": str(free_port()),
           "CINEREC_SIMULATOR__USERS": "60", "CINEREC_SIMULATOR__MOVIES": "80",
           "CINEREC_SIMULATOR__MEAN_RATINGS_PER_USER": "25"}
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        demo = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "demo", "--duration", "90", "--rate", "50"],
                                env=env, stdout=sink, stderr=sink)
    answered, film = False, f"http://127.0.0.1:{api_port}/films/1"
    while demo.poll() is None:
        try:
            answered = answered or urllib.request.urlopen(film, timeout=2).status == 200
        except OSError:
            pass
        time.sleep(1)
    assert demo.wait(timeout=400) == 0, log.read_text()[-2000:]
    assert answered                                                   # the API served while it ran
    text = log.read_text()
    assert "Traceback" not in text and "Exception" not in text, text[-4000:]      # a clean stop
    assert text.rstrip().splitlines()[-1] == "cinerec demo: stopped"
    assert "stream: stopped after" in text
    es = fresh_indices
    es.indices.refresh(index="ratings")
    assert es.count(index="ratings")["count"] > 0                     # simulated events streamed in
    time.sleep(1)
    assert processes_with(str(data_dir)) == []                        # stream, API, simulator stopped
    assert svc_healthy(settings)                                      # services it did not start: kept


def svc_healthy(settings) -> bool:
    from cinerec.ops import services as svc

    report = svc.status(settings)
    return report["kafka"]["healthy"] and report["elasticsearch"]["healthy"]

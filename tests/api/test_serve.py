"""`cinerec serve`: real gunicorn with two workers; Prometheus counts add up across them."""

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from cinerec.ops.services._process import free_port

pytestmark = pytest.mark.services


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_metrics_are_summed_across_gunicorn_workers(base_settings, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINEREC_", "PROMETHEUS_"))}
    env.update({"CINEREC_SERVICES__DATA_DIR": str(tmp_path), "CINEREC_API__PORT": str(port),
                "CINEREC_API__WORKERS": "2", "CINEREC_API__THREADS": "2",
                "CINEREC_ELASTICSEARCH__URL": base_settings.elasticsearch.url,
                "CINEREC_KAFKA__BOOTSTRAP_SERVERS": base_settings.kafka.bootstrap_servers})
    server = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"{base}/openapi.json")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.3)
        requests = 40
        for _ in range(requests):
            assert get(f"{base}/films")[0] == 400          # cheap, no Elasticsearch needed
        _, text = get(f"{base}/metrics")
        counted = re.search(r'cinerec_http_requests_total\{method="GET",route="/films",status="400"\} (\S+)', text)
        assert counted and float(counted.group(1)) == requests
        # Multiprocess mode is on: each worker writes its own sample files that /metrics adds up.
        assert list((tmp_path / "prometheus").glob("counter_*.db"))
    finally:
        server.terminate()
        server.wait(timeout=30)

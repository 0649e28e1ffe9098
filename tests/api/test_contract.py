"""The OpenAPI document is the API's exact contract: schemathesis (every check, a fixed seed, a
bounded number of examples) runs against the real `cinerec serve` on the real Elasticsearch and
Kafka, and any finding fails the test."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cinerec.ops.services._process import free_port

pytestmark = pytest.mark.services
KEY = "contract-test-key"


@pytest.fixture
def served(indexed, settings, tmp_path):
    """`cinerec serve` on a free port over the indexed test world; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINEREC_", "PROMETHEUS_"))}
    env.update({"CINEREC_SERVICES__DATA_DIR": str(tmp_path), "CINEREC_API__PORT": str(port),
                "CINEREC_API__WORKERS": "1", "CINEREC_API__THREADS": "4", "CINEREC_API__API_KEYS": KEY,
                "CINEREC_API__WRITE_RATE_PER_S": "0",
                "CINEREC_ELASTICSEARCH__URL": settings.elasticsearch.url,
                "CINEREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
                "CINEREC_KAFKA__RATINGS_TOPIC": settings.kafka.ratings_topic})
    server = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("w"))
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/openapi.json", timeout=5)
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.3)
    yield base
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.parametrize("seed", [20261206, 20261202])
def test_schemathesis_finds_nothing(served, tmp_path, seed):
    """schemathesis' own expectations, no overrides: the document bounds every body and query the
    server bounds, so a valid request is never refused for its size and an invalid one gets a 400."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{served}/openapi.json",
         "--checks", "all", "--seed", str(seed), "--max-examples", "30", "--generation-database", "none",
         "--header", f"X-API-Key: {KEY}", "--workers", "2", "--no-color", "--request-timeout", "10"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = [line for line in run.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print("\n".join(summary))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]

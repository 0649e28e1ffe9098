"""`cinerec bootstrap` waits for the MLflow tracking server it is given, and only for one (the
whole command runs in tests/test_compose_stack.py, twice: training, then changing nothing)."""

import http.server
import threading
import time

import pytest

from cinerec.core.errors import ServiceError
from cinerec.core.settings import load_settings
from cinerec.ops.bootstrap import wait_for_mlflow


def settings(uri: str, timeout_s: float = 2):
    return load_settings(env={"CINEREC_MLFLOW__TRACKING_URI": uri, "CINEREC_SERVICES__START_TIMEOUT_S": str(timeout_s)})


def test_the_local_store_needs_no_wait():
    started = time.monotonic()
    wait_for_mlflow(settings(""))
    assert time.monotonic() - started < 0.1


def test_a_server_that_never_answers_fails_naming_it():
    with pytest.raises(ServiceError, match="MLflow at http://127.0.0.1:9 not answering after 2s"):
        wait_for_mlflow(settings("http://127.0.0.1:9"))


def test_a_server_answering_health_is_waited_for():
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_for_mlflow(settings(f"http://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()

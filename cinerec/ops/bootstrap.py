"""`cinerec bootstrap`: the one-shot first step of a deployed stack (deployment/docker-compose.yml).

    wait for MLflow's tracking server ─▶ wait for Kafka and Elasticsearch, create the topics
    ─▶ when there is no champion: the synthetic world, train, promote, index (as `cinerec demo` does)

Idempotent: with a champion and its indices in place it changes nothing, so it runs on every `up`.
The services of the stack start in any order and may restart; this waits for what it needs
(podman-compose before podman 4.6 ignores healthcheck conditions, so nothing else waits for it).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from cinerec.core.errors import ServiceError
from cinerec.core.settings import Settings
from cinerec.platform.registry import CHAMPION, Registry

from . import services
from .demo import prepare_champion

# prepare_champion dates the world's history on a feed of this rate only for the demo's loop; unused here.
WORLD_RATE = 200.0


def run(settings: Settings) -> dict:
    started = time.monotonic()
    wait_for_mlflow(settings)
    report = services.up(settings)          # external mode: waits until both answer, creates topics
    had_champion = Registry(settings).version(CHAMPION) is not None
    prepare_champion(settings, None, rate=WORLD_RATE)
    champion = Registry(settings).version(CHAMPION)
    return {"topics": report["topics"], "trained": not had_champion,
            "champion": int(champion.version) if champion else None,
            "seconds": round(time.monotonic() - started, 1)}


def wait_for_mlflow(settings: Settings) -> None:
    """Until the tracking server answers ``/health`` (no-op on the local SQLite store)."""
    uri = settings.mlflow.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    deadline = time.monotonic() + settings.services.start_timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
                error = f"HTTP {answer.status}"
        except (urllib.error.URLError, OSError) as err:
            error = str(err)
        if time.monotonic() > deadline:
            raise ServiceError(f"MLflow at {uri} not answering after {settings.services.start_timeout_s:g}s: {error}")
        time.sleep(1)

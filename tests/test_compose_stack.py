"""The production stack run, not just read: deployment/docker-compose.yml with deployment/compose.local.yml
under podman-compose (`make compose-setup` prepares the machine; part of `make test`). Brings the stack
up, waits for the API's health, sends ratings through ``POST /ratings`` and sees them change the
user's recommendations through Kafka, the streaming job and Elasticsearch, then tears it down.
Skips, saying why, where podman cannot run containers. The figures (build, up-to-healthy, rating to
changed list) go to the test's output and to var/compose-test.log."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = ROOT / "deployment"
PODMAN_COMPOSE = ROOT / ".tools" / "podman-compose" / "bin" / "podman-compose"
BASE = "localhost/debian-base:bookworm"
PROJECT = "cinerec-test"
API_KEY = "compose-test-key"
NICE = ["nice", "-n", "19", "ionice", "-c3"]
LOG = ROOT / "var" / "compose-test.log"
UP_TIMEOUT_S = 1500           # a cold build of every image and the bootstrap's training on two cores
CHANGE_TIMEOUT_S = 300


class ComposeLoader(yaml.SafeLoader):
    """YAML with the Compose override tags (``!reset``: drop the base file's value)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def local_endpoints() -> dict[str, str]:
    text = (DEPLOYMENT / "compose.local.yml").read_text()
    return yaml.load(text, Loader=ComposeLoader)["x-local-endpoints"]  # noqa: S506 - a SafeLoader


API = f"http://127.0.0.1:{local_endpoints()['CINEREC_API__PORT']}"


def unable_reason() -> str | None:
    """Why podman cannot run the stack here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (`make compose-setup` installs it, as root)"
    if not PODMAN_COMPOSE.exists():
        return f"{PODMAN_COMPOSE.relative_to(ROOT)} is missing (`make compose-setup`)"
    if subprocess.run(["podman", "image", "exists", BASE]).returncode != 0:
        return f"no base image {BASE} (`make compose-setup` builds it with debootstrap)"
    probe = subprocess.run(["podman", "run", "--rm", "--network", "host", BASE, "true"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"podman cannot run a container here: {probe.stderr.strip()[-300:]}"
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", int(API.rsplit(":", 1)[1]))) == 0:
            return f"{API} is taken (a stack of `make compose-up` running? `make compose-down`)"
    return None


def log(message: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, flush=True)
    with LOG.open("a") as out:
        out.write(line + "\n")


def compose(*args: str, env: dict, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    command = [*NICE, str(PODMAN_COMPOSE), "-p", PROJECT, "-f", str(DEPLOYMENT / "docker-compose.yml"),
               "-f", str(DEPLOYMENT / "compose.local.yml"), *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman-compose {' '.join(args)} failed ({result.returncode}): "
                             f"{(result.stderr or result.stdout)[-2000:]}")
    return result


def http(method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    request = urllib.request.Request(f"{API}{path}", method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", "X-API-Key": API_KEY})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = unable_reason()
    if reason:
        pytest.skip(reason)
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    secrets = tmp_path_factory.mktemp("alert-secrets")
    for name, value in (("smtp-password", ""), ("slack-webhook-url", "http://127.0.0.1:9/unused"),
                        ("cinerec-api-key", API_KEY)):
        (secrets / name).write_text(value)
    env = {**os.environ, "BASE": BASE, "JAVA_BASE": BASE, "DEBIAN_BASE": BASE, "CINEREC_API_KEYS": API_KEY,
           "ALERT_SECRETS_DIR": str(secrets),
           "ENGINES_DIR": str((ROOT / ".engines").resolve())}
    started = time.monotonic()
    compose("build", env=env, timeout=UP_TIMEOUT_S)
    log(f"build: {time.monotonic() - started:.0f} s (every image of the stack; cached layers reused)")
    started = time.monotonic()
    try:
        compose("up", "-d", env=env, timeout=UP_TIMEOUT_S)
        log(f"up -d returned after {time.monotonic() - started:.0f} s (it waits for the bootstrap to finish)")
        health = wait_for_health(started)
        log(f"healthy {time.monotonic() - started:.0f} s after `up`: {json.dumps(health)[:300]}")
        yield env
    finally:
        for service in ("bootstrap", "stream", "api"):
            tail = compose("logs", "--tail", "15", service, env=env, timeout=60, check=False)
            log(f"--- last lines of {service}:\n{(tail.stdout + tail.stderr)[-2500:]}")
        compose("down", "--volumes", env=env, timeout=300, check=False)


def wait_for_health(started: float) -> dict:
    last = None
    while time.monotonic() - started < UP_TIMEOUT_S:
        try:
            status, last = http("GET", "/health")
            if status == 200:
                return last
        except (urllib.error.URLError, OSError) as err:
            last = {"error": str(err)}
        time.sleep(3)
    raise AssertionError(f"the API was not healthy within {UP_TIMEOUT_S} s: {last}")


def test_a_rating_through_the_api_changes_the_users_recommendations(stack):
    user = 1
    # The first request of a worker loads the champion's catalogue (seconds on two busy cores).
    status, before = http("GET", f"/users/{user}/recommendations?k=10", timeout=120)
    assert status == 200, before
    shown = [film["movie_id"] for film in before["results"]]
    log(f"user {user} before: {before['based_on']} films {shown}")
    rated = shown[:3]                         # rated films leave the list: the fold-in saw them
    for movie_id in rated:
        status, answer = http("POST", "/ratings", {"user_id": user, "movie_id": movie_id, "rating": 5.0})
        assert status == 202, answer
    log(f"POST /ratings user {user}: films {rated} rated 5.0 (202 accepted)")
    sent = time.monotonic()
    while time.monotonic() - sent < CHANGE_TIMEOUT_S:
        status, after = http("GET", f"/users/{user}/recommendations?k=10")
        now = [film["movie_id"] for film in after.get("results", [])]
        if status == 200 and after["based_on"]["ratings"] != before["based_on"]["ratings"] and now != shown:
            log(f"user {user} after {time.monotonic() - sent:.1f} s: {after['based_on']} films {now}")
            assert not set(rated) & set(now)
            return
        time.sleep(1)
    raise AssertionError(f"user {user}'s recommendations did not change within {CHANGE_TIMEOUT_S} s")


def served_version(user: int = 1) -> str:
    status, answer = http("GET", f"/users/{user}/recommendations?k=5", timeout=60)
    assert status == 200, answer
    return answer["based_on"]["model_version"]


def wait_for_version(version: str, what: str, timeout_s: float = CHANGE_TIMEOUT_S) -> None:
    started = time.monotonic()
    while (now := served_version()) != version:
        assert time.monotonic() - started < timeout_s, f"{what}: still version {now} after {timeout_s} s"
        time.sleep(2)
    log(f"{what}: the API serves model version {version} ({time.monotonic() - started:.0f} s)")


def test_a_release_and_its_rollback(stack):
    """docs/deployment.md's procedures on the running stack. A new model is released (train,
    promote, index in the bootstrap's container; ``--margin -1`` releases it whatever its score) and
    served; the model rollback (``rollback``, ``index``) serves the version before again; the code
    rollback starts the app services from the previous image tag, and the champion stays."""
    env = stack
    before = served_version()
    for step in (["train", "--model", "als", "--param", "rank=16"], ["promote", "--margin", "-1"], ["index"]):
        compose("run", "--rm", "--no-deps", "-T", "bootstrap", *step, env=env, timeout=900)
    released = str(int(before) + 1)
    wait_for_version(released, "release")
    for step in (["rollback"], ["index"]):
        compose("run", "--rm", "--no-deps", "-T", "bootstrap", *step, env=env, timeout=600)
    wait_for_version(before, "model rollback")
    # The code rollback: the app services from another tag of the image (here the same build under the
    # tag a previous release would have), recreated on the same volumes.
    for image in ("cinerec", "cinerec-prometheus", "cinerec-alertmanager"):
        subprocess.run(["podman", "tag", f"localhost/{image}:dev", f"localhost/{image}:previous"], check=True)
    previous = {**env, "CINEREC_TAG": "previous"}
    compose("up", "-d", "--no-deps", "--force-recreate", "api", "stream", "online", env=previous, timeout=600)
    started = time.monotonic()
    wait_for_health(started)
    running = subprocess.run(["podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
                              "--format", "{{.Names}} {{.Image}}"], capture_output=True, text=True).stdout
    log(f"code rollback: healthy {time.monotonic() - started:.0f} s after `up -d` with CINEREC_TAG=previous:\n"
        f"{running.strip()}")
    assert "localhost/cinerec:previous" in running, running
    wait_for_version(before, "after the code rollback")


@pytest.mark.parametrize("service, image", [("grafana", "grafana/grafana"),
                                            ("kibana", "docker.elastic.co/kibana/kibana")])
def test_upstream_only_services_are_described_behind_a_profile(service, image):
    description = yaml.safe_load((DEPLOYMENT / "docker-compose.yml").read_text())["services"][service]
    assert description["profiles"] == ["upstream"] and description["image"].startswith(image)
    image_here = ["podman", "image", "exists", description["image"]]
    present = shutil.which("podman") and subprocess.run(image_here).returncode == 0
    if not present:
        pytest.skip(f"{service} not run: {description['image']} comes only from its vendor's registry, which "
                    "these machines cannot reach (the local run leaves the profile `upstream` off)")

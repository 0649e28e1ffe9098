"""What the fault tests share: the CLI's environment on the test services, the streaming job as
a process of its own, killing process trees, and the ledger every fault must leave exact."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from core.events import InvalidEvent, parse_event
from kafka_helpers import consume_all
from ops import services as svc
from streaming.metrics import process_tree

USERS, FILMS = 60, 80          # the small synthetic world of the fault tests


@contextlib.contextmanager
def trained_world(base_settings, data_dir: Path, prefix: str, **env_extra: str):
    """A synthetic world trained, promoted and indexed through the CLI on topics of its own;
    yields (settings, the CLI's environment) and deletes the topics afterwards. Training runs in
    this process: request the ``spark`` fixture first, or the session it creates lacks the Kafka
    connector every later streaming test needs."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    settings = base_settings.replace(kafka__ratings_topic=name, kafka__dlq_topic=f"{name}.dlq",
                                     kafka__privacy_topic=f"{name}.privacy")
    svc.ensure_topics(settings.kafka)
    env = cli_env(settings, data_dir) | env_extra
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert main(["train", "--param", "rank=8", "--param", "iterations=3"]) == 0
        assert main(["promote"]) == 0
        assert main(["index"]) == 0
    try:
        yield settings, env
    finally:
        svc.delete_topics(settings.kafka, [name, f"{name}.dlq", f"{name}.privacy"])


def cli_env(settings, data_dir: Path) -> dict:
    return {"CINEREC_SERVICES__DATA_DIR": str(data_dir),
            "CINEREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "CINEREC_KAFKA__RATINGS_TOPIC": settings.kafka.ratings_topic,
            "CINEREC_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
            "CINEREC_KAFKA__PRIVACY_TOPIC": settings.kafka.privacy_topic,
            "CINEREC_ELASTICSEARCH__URL": settings.elasticsearch.url,
            "CINEREC_SIMULATOR__USERS": str(USERS), "CINEREC_SIMULATOR__MOVIES": str(FILMS),
            "CINEREC_SIMULATOR__MEAN_RATINGS_PER_USER": "25",
            "CINEREC_STREAMING__TRIGGER_MS": "200", "CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "300",
            "CINEREC_STREAMING__METRICS_PORT": "0"}


def stream(env: dict, *extra: str, log: Path | None = None) -> subprocess.Popen:
    """`cinerec stream` in a session of its own (so its whole tree can be killed); stderr to ``log``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CINEREC_")}
    sink = log.open("a") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "cli.main", "stream", *extra], env={**clean, **env},
                            stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True)


def kill_tree(pid: int) -> None:
    """SIGKILL to ``pid`` and every descendant (Spark's JVM runs in a session of its own)."""
    for victim in process_tree(pid):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def sigkill(pid_file: Path) -> int:
    """SIGKILL to the engine whose pid ``pid_file`` holds (Kafka or Elasticsearch); its pid."""
    pid = int(pid_file.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    return pid


def expected_state(settings, data_dir: Path, erased: frozenset = frozenset()) -> tuple[dict, set]:
    """The ledger: training ratings, then every valid event on the topic for a catalog film, the
    latest (ts, id) winning; nothing of ``erased`` users. Returns ({(user, film): (rating, ts,
    event id)}, accepted event ids)."""
    world = pd.read_csv(data_dir / "world" / "ratings.csv")
    current = {(int(u), int(m)): (float(r), int(t) * 1000, "train")
               for u, m, r, t in world[["userId", "movieId", "rating", "timestamp"]].itertuples(index=False)}
    accepted = set()
    for message in consume_all(settings.kafka, settings.kafka.ratings_topic):
        try:
            e = parse_event(message.value(), message.timestamp()[1])
        except InvalidEvent:
            continue
        if e.user_id in erased:
            continue
        accepted.add(e.event_id)
        key = (e.user_id, e.movie_id)
        if key not in current or current[key][1:] < (e.ts, e.event_id):
            current[key] = (e.rating, e.ts, e.event_id)
    return {k: v for k, v in current.items() if k[0] not in erased}, accepted


def assert_ledger(settings, data_dir: Path, es, erased: frozenset = frozenset()) -> dict:
    """Every film's count and mean, every user's rated set and the ratings index equal the ledger:
    nothing lost, nothing counted twice, nothing left of ``erased`` users. Returns the figures."""
    current, accepted = expected_state(settings, data_dir, erased)
    es.indices.refresh(index=["film_stats", "users", "ratings"])
    for movie in range(1, FILMS + 1):
        values = [r for (u, m), (r, _, _) in current.items() if m == movie]
        doc = es.get(index="film_stats", id=str(movie))["_source"]
        assert doc["rating_count"] == len(values), movie
        if values:
            assert doc["rating_mean"] == pytest.approx(sum(values) / len(values)), movie
    for user in erased:
        assert not es.exists(index="users", id=str(user)), user
    for user in sorted(set(range(1, USERS + 1)) - erased):
        rated = sorted(str(m) for (u, m) in current if u == user)
        assert sorted(es.get(index="users", id=str(user))["_source"]["rated"]) == rated, user
    indexed = es.count(index="ratings")["count"]
    assert indexed == len(accepted), f"{indexed} events indexed, {len(accepted)} accepted on the topic"
    return {"accepted": len(accepted), "indexed": indexed}


def ratings_indexed(es) -> int:
    es.indices.refresh(index="ratings")
    return es.count(index="ratings")["count"]


def wait_until_served(url: str, log: Path, timeout_s: float = 60) -> None:
    """Polls ``url`` until it answers; fails with the tail of the server's ``log``."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)

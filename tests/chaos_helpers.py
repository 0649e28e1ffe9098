"""What the fault tests share: the CLI's environment on the test services, the streaming job as
a process of its own, killing process trees, and the ledger every fault must leave exact."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from cinerec.cli.main import main
from cinerec.core.events import InvalidEvent, parse_event, supersedes
from cinerec.ops import services as svc
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.streaming.metrics import process_tree
from cinerec.streaming.stateful import checkpoint_dir

from kafka_helpers import consume_all

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
    return subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "stream", *extra], env={**clean, **env},
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
    latest winning (``core.events.supersedes``); nothing of ``erased`` users. Returns ({(user,
    film): (rating, ts, event id)}, accepted event ids)."""
    world = pd.read_csv(data_dir / "world" / "ratings.csv")
    current: dict[tuple[int, int], tuple[float, int, str]] = {}
    for u, m, r, t in world[["userId", "movieId", "rating", "timestamp"]].itertuples(index=False):
        if supersedes(current.get((int(u), int(m))), float(r), int(t) * 1000):
            current[(int(u), int(m))] = (float(r), int(t) * 1000, "train")
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
        if supersedes(current.get(key), e.rating, e.ts):
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
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)


class Load(threading.Thread):
    """The simulator publishing ``count`` events at ``rate``/s (2 % malformed); ``report`` when done."""

    def __init__(self, settings, tastes, *, rate: float, count: int, seed: int):
        super().__init__(daemon=True)
        self.args, self.report = (settings, tastes, rate, count, seed), None

    def run(self) -> None:
        settings, tastes, rate, count, seed = self.args
        messages = simulated_messages(tastes, seed=seed, rate=rate, count=count, malformed=0.02)
        self.report = publish(settings.kafka, messages, topic=settings.kafka.ratings_topic)


def running_job(env: dict, data_dir: Path, log: Path) -> subprocess.Popen:
    """`cinerec stream` started and past its first committed batch."""
    commits = checkpoint_dir(data_dir) / "commits"
    newest = lambda: max((int(p.name) for p in commits.glob("[0-9]*")), default=-1)  # noqa: E731
    before = newest()                       # Spark keeps only the newest commit files: compare ids, not counts
    job = stream(env, log=log)
    deadline = time.monotonic() + 240
    while newest() <= before:
        assert time.monotonic() < deadline and job.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    return job


def caught_up(settings, data_dir: Path, es, job: subprocess.Popen, log: Path, timeout_s: float = 420) -> None:
    """Waits until the running job has indexed every accepted event on the topic."""
    _, accepted = expected_state(settings, data_dir)
    deadline = time.monotonic() + timeout_s
    while ratings_indexed(es) < len(accepted):
        assert job.poll() is None, f"the job exited with {job.returncode}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not caught up: {ratings_indexed(es)} of {len(accepted)} indexed"
        time.sleep(2)


def stopped_cleanly(job: subprocess.Popen, log: Path) -> str:
    """SIGTERM: the job stops with one summary line, exit 0 and no stack trace. (While a fault
    lasts, Spark's own log may quote a failed foreachBatch's Python traceback; the stop may not.)"""
    before = len(log.read_text())
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text[before:] and "stream: stopped after" in text.splitlines()[-1], text[-3000:]
    return text


def figures(settings, data_dir: Path, es, sent: int) -> dict:
    """Events sent / accepted / dead-lettered / lost / doubled, from the topic, the DLQ and the index."""
    ledger = assert_ledger(settings, data_dir, es)
    on_topic = len(consume_all(settings.kafka, settings.kafka.ratings_topic))
    dead = {json.loads(m.value())["partition"] * 10**9 + json.loads(m.value())["offset"]
            for m in consume_all(settings.kafka, settings.kafka.dlq_topic)}
    report = {"sent": sent, "on_topic": on_topic, "accepted": ledger["accepted"], "dead_lettered": len(dead),
              "lost": on_topic - ledger["accepted"] - len(dead), "doubled": ledger["indexed"] - ledger["accepted"]}
    print(json.dumps(report))
    return report

"""kill -9 of the running streaming job, then a restart from its checkpoint: every film's count
and mean, every user's rated set and the ratings index equal a ledger of the events exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from core.events import InvalidEvent, parse_event
from kafka_helpers import consume_all
from simulator.producer import publish, simulated_messages
from simulator.world import Tastes
from streaming.metrics import process_tree
from streaming.stateful import checkpoint_dir

# The kill takes the whole process tree: Spark's JVM runs in a session of its own and would
# otherwise survive and keep running the old query on the same checkpoint.
pytestmark = [pytest.mark.services, pytest.mark.spark, pytest.mark.chaos]


def cli_env(settings, data_dir: Path) -> dict:
    return {"CINEREC_SERVICES__DATA_DIR": str(data_dir),
            "CINEREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "CINEREC_KAFKA__RATINGS_TOPIC": settings.kafka.ratings_topic,
            "CINEREC_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
            "CINEREC_ELASTICSEARCH__URL": settings.elasticsearch.url,
            "CINEREC_SIMULATOR__USERS": "60", "CINEREC_SIMULATOR__MOVIES": "80",
            "CINEREC_SIMULATOR__MEAN_RATINGS_PER_USER": "25",
            "CINEREC_STREAMING__TRIGGER_MS": "200", "CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "300",
            "CINEREC_STREAMING__METRICS_PORT": "0"}


def stream(env: dict, *extra: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CINEREC_")}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "stream", *extra], env={**clean, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_tree(pid: int) -> None:
    for victim in process_tree(pid):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_and_restart_lose_nothing_and_count_nothing_twice(settings, fresh_indices, spark, tmp_path,
                                                                  monkeypatch):
    env = cli_env(settings, tmp_path / "var")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["train", "--param", "rank=8", "--param", "iterations=3"]) == 0
    assert main(["promote"]) == 0
    assert main(["index"]) == 0
    tastes = Tastes.load(tmp_path / "var" / "world" / "tastes.npz")

    def produce(n: int, seed: int) -> None:
        messages = simulated_messages(tastes, seed=seed, rate=0, count=n, malformed=0.05)
        assert publish(settings.kafka, messages, topic=settings.kafka.ratings_topic)["failed"] == 0

    produce(2000, seed=1)
    job = stream(env)
    commits = checkpoint_dir(tmp_path / "var") / "commits"
    deadline = time.monotonic() + 240
    while len(list(commits.glob("[0-9]*"))) < 2:                     # mid-run: some batches committed
        assert time.monotonic() < deadline and job.poll() is None, "stream did not make progress"
        time.sleep(0.2)
    kill_tree(job.pid)                     # the driver and its JVM (which runs in a session of its own)
    job.wait()
    produce(1500, seed=2)
    restarted = stream(env, "--available-now")
    assert restarted.wait(timeout=300) == 0

    # The ledger: training ratings, then every valid event for a catalog film, latest (ts, id) wins.
    world = pd.read_csv(tmp_path / "var" / "world" / "ratings.csv")
    current = {(int(u), int(m)): (float(r), int(t) * 1000, "train")
               for u, m, r, t in world[["userId", "movieId", "rating", "timestamp"]].itertuples(index=False)}
    accepted = set()
    for message in consume_all(settings.kafka, settings.kafka.ratings_topic):
        try:
            e = parse_event(message.value())
        except InvalidEvent:
            continue
        accepted.add(e.event_id)
        key = (e.user_id, e.movie_id)
        if key not in current or current[key][1:] < (e.ts, e.event_id):
            current[key] = (e.rating, e.ts, e.event_id)
    es = fresh_indices
    es.indices.refresh(index="films")
    for movie in range(1, 81):
        values = [r for (u, m), (r, _, _) in current.items() if m == movie]
        doc = es.get(index="films", id=str(movie))["_source"]
        assert doc["rating_count"] == len(values), movie
        if values:
            assert doc["rating_mean"] == pytest.approx(sum(values) / len(values)), movie
    for user in range(1, 61):
        rated = sorted(str(m) for (u, m) in current if u == user)
        assert sorted(es.get(index="users", id=str(user))["_source"]["rated"]) == rated, user
    es.indices.refresh(index="ratings")                 # the job leaves it to refresh_interval
    assert es.count(index="ratings")["count"] == len(accepted)

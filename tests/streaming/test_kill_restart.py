"""kill -9 of the running streaming job, then a restart from its checkpoint: every film's count
and mean, every user's rated set and the ratings index equal a ledger of the events exactly."""

import time

import pytest
from chaos_helpers import assert_ledger, cli_env, kill_tree, stream

from cinerec.cli.main import main
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.world import Tastes
from cinerec.streaming.stateful import checkpoint_dir

# The kill takes the whole process tree: Spark's JVM runs in a session of its own and would
# otherwise survive and keep running the old query on the same checkpoint.
pytestmark = [pytest.mark.services, pytest.mark.spark, pytest.mark.chaos]


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

    assert_ledger(settings, tmp_path / "var", fresh_indices)

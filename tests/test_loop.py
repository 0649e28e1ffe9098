"""The operations loop end to end on a small world and the real engines: streamed ratings pass
20 % of the champion's data (the sensor asks for a run) → the Dagster pipeline retrains (extract,
train, gate) and starts a canary → simulated users ask the API, click and rate → online metrics →
the canary is decided (promote or abort) and the decision is kept with the model version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from chaos_helpers import ratings_indexed, stream, trained_world, wait_until_served
from dagster import RunRequest, build_sensor_context

from cli.main import main
from core.settings import load_settings
from ops.services._process import free_port
from simulator.closed_loop import ClosedLoop
from simulator.producer import publish, simulated_messages
from simulator.world import Tastes

pytestmark = [pytest.mark.services, pytest.mark.spark]


def test_new_data_triggers_a_retraining_whose_canary_is_decided_on_online_metrics(
        spark, services, base_settings, fresh_indices, tmp_path, capsys, monkeypatch):
    from batch.registry import Registry
    from ops.pipeline import new_data, new_data_share
    from search import canary
    from streaming.online import OnlineMetrics, consume

    es, data_dir, log = fresh_indices, tmp_path / "var", tmp_path / "stream.log"
    port = free_port()
    with trained_world(base_settings, data_dir, "loop", CINEREC_API__PORT=str(port)) as (settings, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()                                            # what the CLI's commands see
        tastes = Tastes.load(data_dir / "world" / "tastes.npz")
        publish(settings.kafka, simulated_messages(tastes, seed=9, rate=0, count=600),
                topic=settings.kafka.ratings_topic)
        job = stream(env, log=log)
        deadline = time.monotonic() + 240
        while ratings_indexed(es) < 600:
            assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        job.send_signal(signal.SIGTERM)
        assert job.wait(120) == 0

        share = new_data_share(settings)                                      # the trigger
        assert share >= 0.2 and isinstance(new_data(build_sensor_context()), RunRequest)
        capsys.readouterr()
        assert main(["retrain", "--now", "--reason", "new_data"]) == 0
        run = json.loads(capsys.readouterr().out)
        assert run["success"] and list(run["steps"]) == ["extract", "train_op", "gate_op", "canary_op"], run
        started = canary.running(es)
        assert started["version"] == "2" and started["champion_version"] == "1"

        serve = subprocess.Popen([sys.executable, "-m", "cli.main", "serve"], env={**os.environ, **env},
                                 stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("w"),
                                 start_new_session=True)
        stop = threading.Event()
        online = threading.Thread(target=consume, args=(settings.kafka, OnlineMetrics(es), stop), daemon=True)
        online.start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_served(f"{url}/health", tmp_path / "serve.log")
            report = ClosedLoop(tastes, settings.kafka, url, seed=3).run(rate=0, steps=500)
            assert report["lists_challenger"] > 0 and report["lists_champion"] > report["lists_challenger"]
            assert report["precision"] is not None
            time.sleep(5)                                                     # the consumer's last flush
            capsys.readouterr()
            assert main(["canary", "decide", "--watch", "1"]) == 0
            decided = json.loads(capsys.readouterr().out)
        finally:
            stop.set()
            serve.terminate()
            serve.wait(30)
        with capsys.disabled():
            print("\ncanary:", json.dumps(decided["decision"]), json.dumps(decided["online"]))
        action = decided["decision"]["action"]
        assert action in ("promote", "abort") and decided["result"]["action"] == action
        assert canary.current(es)["status"] == ("promoted" if action == "promote" else "aborted")
        registry = Registry(settings)
        kept = json.loads(registry.client.get_model_version(registry.name, "2").tags["canary"])
        assert kept["action"] == action and kept["champion_impressions"] >= 200
        assert str(registry.version("champion").version) == ("2" if action == "promote" else "1")

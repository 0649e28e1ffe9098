"""The operations loop end to end on a small world and the real engines, run by the scheduler
(Dagster's daemon and web server on a persistent instance, as `cinerec demo` starts it): streamed
ratings pass 20 % of the champion's data → the new_data sensor asks for a run → the pipeline
retrains (extract, train, gate) and starts a canary → the sensor does not fire again on the same
data → a run submitted while the canary is open fails at its canary step → simulated users ask
the API, click and rate → the canary_decision sensor promotes or aborts, kept with the model
version → the failed run is re-executed from its failed step and opens the next canary."""

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

from cinerec.cli.main import main
from cinerec.core.settings import load_settings
from cinerec.ops import scheduler
from cinerec.ops.services._process import free_port
from cinerec.simulator.closed_loop import ClosedLoop
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.world import Tastes

pytestmark = [pytest.mark.services, pytest.mark.spark]
STEPS = ["extract", "train_op", "gate_op", "canary_op"]


def eventually(check, what: str, timeout_s: float, log=None):
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s" + (
            f"\n{log.read_text()[-3000:]}" if log is not None and log.is_file() else "")
        time.sleep(1)
    return found


def test_the_scheduler_retrains_on_new_data_and_decides_the_canary_by_itself(
        spark, services, base_settings, fresh_indices, tmp_path, capsys, monkeypatch):
    from cinerec.ops.pipeline import new_data
    from cinerec.platform.registry import Registry
    from cinerec.search import canary
    from cinerec.streaming.online import OnlineMetrics, consume

    es, data_dir, log = fresh_indices, tmp_path / "var", tmp_path / "stream.log"
    port, dagster_log = free_port(), tmp_path / "dagster.log"
    with trained_world(base_settings, data_dir, "loop", CINEREC_API__PORT=str(port),
                       CINEREC_OPS__DAGSTER_PORT=str(free_port()), CINEREC_OPS__NEW_DATA_CHECK_S="5",
                       CINEREC_OPS__CANARY_LOOK_S="5") as (settings, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()                                            # what the scheduler sees
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
        counted = new_data(settings)
        assert counted["new"] == 600 and counted["share"] >= settings.ops.new_data_share, counted

        dagster = scheduler.start(settings, log=dagster_log)
        serve = None
        try:
            scheduler.wait_until_answering(settings, dagster)
            # the new_data sensor ticks on the instance and asks for a run, which the daemon launches
            tick = eventually(lambda: next((t for t in scheduler.ticks(settings, "new_data") if t["run_ids"]), None),
                              "new_data tick with a run", 120, dagster_log)
            first = scheduler.wait_for_run(settings, tick["run_ids"][0], timeout_s=600)
            assert first["status"] == "SUCCESS" and first["trigger"] == "new_data", first
            assert list(first["steps"]) == STEPS, first
            started = canary.running(es)
            assert started["version"] == "2" and started["champion_version"] == "1"

            # right after the retraining nothing is new: the sensor skips (it counts from the extract)
            retrained_at = time.time()
            assert new_data(settings)["new"] == 0
            skipped = eventually(lambda: next((t for t in scheduler.ticks(settings, "new_data")   # a finished one
                                               if t["at"] > retrained_at and t["status"] != "STARTED"), None),
                                 "new_data tick", 60)
            assert skipped["status"] == "SKIPPED" and not skipped["run_ids"], skipped

            # a run submitted by hand while the canary is open fails at its canary step
            capsys.readouterr()
            assert main(["retrain", "--now", "--reason", "by-hand", "--wait"]) == 1
            failed = json.loads(capsys.readouterr().out)
            assert failed["steps"] == {"extract": "SUCCESS", "train_op": "SUCCESS", "gate_op": "SUCCESS",
                                       "canary_op": "FAILURE"}, failed

            serve = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "serve"], env={**os.environ, **env},
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
                # nobody decides: the canary_decision sensor looks every 5 s until the test says so
                decided = eventually(lambda: canary.current(es)["status"] in ("promoted", "aborted")
                                     and canary.current(es), "canary decision", 180, dagster_log)
            finally:
                stop.set()
            looks = [t["skip_reason"] for t in scheduler.ticks(settings, "canary_decision", limit=50)
                     if t["skip_reason"] and t["skip_reason"].startswith("look ")]
            with capsys.disabled():
                print("\ncanary:", json.dumps(decided["decision"]), "\nsensor looks:", looks[:3])
            action = decided["decision"]["action"]
            assert action in ("promote", "abort") and any(f": {action} (" in look for look in looks), looks
            registry = Registry(settings)
            kept = json.loads(registry.client.get_model_version(registry.name, "2").tags["canary"])
            assert kept["action"] == action and kept["champion_impressions"] >= 200
            assert str(registry.version("champion").version) == ("2" if action == "promote" else "1")
            assert new_data(settings)["new"] == 0              # a decided canary does not make data new

            # the failed run, re-executed from its failed step: only the canary step runs again
            capsys.readouterr()
            assert main(["retrain", "--from-failure", failed["run_id"], "--wait"]) == 0
            again = json.loads(capsys.readouterr().out)
            assert again["parent_run_id"] == failed["run_id"] and list(again["steps"]) == ["canary_op"], again
            assert canary.running(es)["version"] == "3"
        finally:
            if canary.running(es):                     # the shared Elasticsearch: no canary left for later tests
                canary.update(es, status="aborted")
            if serve is not None:
                serve.terminate()
                serve.wait(30)
            dagster.terminate()
            dagster.wait(60)

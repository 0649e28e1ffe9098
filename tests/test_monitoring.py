"""Monitoring for real: the alert rules under `promtool test rules`, every metric a rule or a
Grafana panel uses is one the code exports, Alertmanager's configuration is valid, and a retrain
alert sent to Debian's Alertmanager reaches the API's webhook and starts the retraining pipeline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from werkzeug.serving import make_server

from ops.services._process import free_port

DEPLOYMENT = Path(__file__).resolve().parent.parent / "deployment"
PROMTOOL, AMTOOL = shutil.which("promtool"), shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
missing = pytest.mark.skipif(PROMTOOL is None, reason="Debian's prometheus is not installed (make test installs it)")


@missing
def test_alert_rules_pass_their_unit_tests():
    run = subprocess.run([PROMTOOL, "test", "rules", "rules.test.yml"], cwd=DEPLOYMENT / "prometheus",
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert subprocess.run([PROMTOOL, "check", "config", "prometheus.yml"], cwd=DEPLOYMENT / "prometheus",
                          capture_output=True).returncode == 0


def exported_metrics() -> set[str]:
    """Names of the metrics the code registers (API, streaming job, online metrics)."""
    from prometheus_client import REGISTRY

    import api.metrics  # noqa: F401 - registers its metrics
    import streaming.metrics  # noqa: F401
    import streaming.online  # noqa: F401

    names = set()
    for collector in list(REGISTRY._collector_to_names):
        for family in collector.describe() if hasattr(collector, "describe") else []:
            names.add(family.name)
    return names


def used_metrics(expressions: list[str]) -> set[str]:
    """Metric names in PromQL expressions (recorded series ``cinerec:…`` excluded), suffixes stripped."""
    found = set()
    for expr in expressions:
        for name in re.findall(r"\b(cinerec_[a-z_]+)", expr):
            found.add(re.sub(r"_(bucket|sum|count|total)$", "", name))
    return found


def test_every_metric_a_rule_or_panel_uses_is_exported():
    rules = yaml.safe_load((DEPLOYMENT / "prometheus" / "rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOYMENT / "grafana" / "cinerec.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    recorded = {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}
    assert {n for e in exprs for n in re.findall(r"\b(cinerec:[a-z_0-9:]+)", e)} <= recorded
    unknown = used_metrics(exprs) - {re.sub(r"_(total)$", "", n) for n in exported_metrics()}
    assert not unknown, f"used but never exported: {sorted(unknown)}"


@pytest.mark.skipif(ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed")
@pytest.mark.services
def test_a_retrain_alert_reaches_the_webhook_and_starts_the_pipeline(services, base_settings, tmp_path):
    from api import create_app
    from ops.monitoring import write_configs

    assert subprocess.run([AMTOOL, "check-config", str(DEPLOYMENT / "alertmanager" / "alertmanager.yml")],
                          capture_output=True).returncode == 0
    key, data_dir = "alert-test-key", tmp_path / "var"
    data_dir.mkdir()
    settings = base_settings.replace(api__api_keys=key, services__data_dir=str(data_dir))
    app = create_app(settings)
    api_port, am_port, cluster_port = free_port(), free_port(), free_port()
    server = make_server("127.0.0.1", api_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the project's routes, pointed at this API (what `cinerec demo` runs)
    write_configs(settings.replace(api__host="127.0.0.1", api__port=api_port), tmp_path, key)
    manager = subprocess.Popen([ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}",
                                f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                                f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "alertmanager.log").open("w"))
    try:
        alert = [{"labels": {"alertname": "RatingDrift", "action": "retrain", "severity": "ticket"},
                  "annotations": {"summary": "test"}}]
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{am_port}/api/v2/alerts", data=json.dumps(alert).encode(),
                    headers={"Content-Type": "application/json"}), timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()[-2000:]
                time.sleep(0.5)
        log = data_dir / "logs" / "retrain.log"
        while not (data_dir / "retrain.pid").is_file():
            assert time.monotonic() < deadline + 30, (tmp_path / "alertmanager.log").read_text()[-2000:]
            time.sleep(0.5)
        pid = int((data_dir / "retrain.pid").read_text())
        while not log.is_file() or "RatingDrift" not in log.read_text():                 # the run carries its trigger
            assert time.monotonic() < deadline + 120, log.read_text()[-2000:] if log.is_file() else "no log"
            time.sleep(1)
    finally:
        manager.terminate()
        manager.wait(10)
        server.shutdown()
    assert pid > 0


@missing
@pytest.mark.parametrize("speedup", [1, 60])
def test_the_local_monitoring_configuration_is_valid(base_settings, tmp_path, speedup):
    """What `cinerec demo` gives Debian's Prometheus (the production files with local targets;
    `--loop` divides the rules' durations): promtool accepts it, and every rule is still there."""
    from ops.monitoring import write_configs

    prometheus_yml, alertmanager_yml = write_configs(base_settings, tmp_path, "key", speedup=speedup)
    checked = subprocess.run([PROMTOOL, "check", "config", str(prometheus_yml)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    if AMTOOL:
        assert subprocess.run([AMTOOL, "check-config", str(alertmanager_yml)], capture_output=True).returncode == 0
    local = yaml.safe_load((tmp_path / "rules.yml").read_text())
    project = yaml.safe_load((DEPLOYMENT / "prometheus" / "rules.yml").read_text())
    names = lambda rules: [r.get("alert") or r["record"] for g in rules["groups"] for r in g["rules"]]  # noqa: E731
    assert names(local) == names(project)
    lag = next(r for g in local["groups"] for r in g["rules"] if r.get("alert") == "OnlineCtrDrop")
    assert ("offset 60s" in lag["expr"] and lag["for"] == "15s") if speedup == 60 else lag["for"] == "15m"


def test_the_pipeline_has_its_steps_triggers_and_retries():
    from ops.pipeline import defs, retrain

    steps = [node.name for node in retrain.graph.nodes_in_topological_order]
    assert steps == ["extract", "train_op", "gate_op", "canary_op"]
    assert {s.name for s in defs.sensors} == {"new_data"} and len(list(defs.schedules)) == 1
    assert retrain.graph.node_named("extract").definition.retry_policy.max_retries == 2

"""Monitoring for real: the alert rules under `promtool test rules`, every metric a rule or a
Grafana panel uses is one the code exports (and the recall panel plots recall), Alertmanager's
configuration is valid, and a retrain alert sent to Debian's Alertmanager reaches the API's
webhook and starts the retraining pipeline (the people's receivers: test_alert_receivers.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from alert_helpers import ALERTMANAGER, AMTOOL, alertmanager, post_alerts
from werkzeug.serving import make_server

from cinerec.ops.services._process import free_port

DEPLOYMENT = Path(__file__).resolve().parent.parent / "deployment"
PROMTOOL = shutil.which("promtool")
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

    import cinerec.api.metrics  # noqa: F401 - registers its metrics
    import cinerec.streaming.metrics  # noqa: F401
    import cinerec.streaming.online  # noqa: F401

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


def test_the_recall_panel_reads_recall():
    """Grafana's recall@k panel plots cinerec_online_precision: the hidden tastes' relevant set is
    the user's true top len(shown), so recall@k = |shown ∩ top k| / k = precision@k. Checked on
    random tastes and lists against core.metrics.recall_at_k."""
    from cinerec.core.metrics import recall_at_k
    from cinerec.simulator.closed_loop import expected_ratings, truth
    from cinerec.simulator.world import Tastes

    rng = np.random.default_rng(7)
    users, films, d = 5, 60, 4
    tastes = Tastes(np.arange(users), np.arange(100, 100 + films), rng.normal(size=(users, d)),
                    rng.normal(size=(films, d)), rng.normal(size=users), rng.normal(size=films),
                    np.zeros(films), np.zeros(users, dtype=bool))
    for user in range(users):
        for k in (1, 5, 10):
            shown = [int(m) for m in rng.choice(tastes.movie_id, size=k, replace=False)]
            top = set(tastes.movie_id[np.argsort(-expected_ratings(tastes, user))[:k]].tolist())
            assert truth(tastes, user, shown, set())[0] == pytest.approx(recall_at_k({0: shown}, {0: top}, k))
    panel = next(p for p in json.loads((DEPLOYMENT / "grafana" / "cinerec.json").read_text())["panels"]
                 if p["title"].startswith("Recall"))
    assert [t["expr"] for t in panel["targets"]] == ["cinerec_online_precision"]


@pytest.mark.skipif(ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed")
@pytest.mark.services
def test_a_retrain_alert_reaches_the_webhook_and_starts_the_pipeline(services, base_settings, tmp_path):
    from cinerec.api import create_app
    from cinerec.ops.monitoring import write_configs

    assert subprocess.run([AMTOOL, "check-config", str(DEPLOYMENT / "alertmanager" / "alertmanager.yml")],
                          capture_output=True).returncode == 0
    key, data_dir = "alert-test-key", tmp_path / "var"
    data_dir.mkdir()
    settings = base_settings.replace(api__api_keys=key, services__data_dir=str(data_dir))
    app = create_app(settings)
    api_port = free_port()
    server = make_server("127.0.0.1", api_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the project's routes, pointed at this API (what `cinerec demo` runs)
    _, config = write_configs(settings.replace(api__host="127.0.0.1", api__port=api_port), tmp_path, key)
    try:
        with alertmanager(config, tmp_path) as (am_port, am_log):
            alert = [{"labels": {"alertname": "RatingDrift", "action": "retrain", "severity": "ticket"},
                      "annotations": {"summary": "test"}}]
            post_alerts(am_port, alert, am_log)
            deadline = time.monotonic() + 30
            log = data_dir / "logs" / "retrain.log"
            while not (data_dir / "retrain.pid").is_file():
                assert time.monotonic() < deadline + 30, am_log.read_text()[-2000:]
                time.sleep(0.5)
            pid = int((data_dir / "retrain.pid").read_text())
            while not log.is_file() or "RatingDrift" not in log.read_text():             # the run carries its trigger
                assert time.monotonic() < deadline + 120, log.read_text()[-2000:] if log.is_file() else "no log"
                time.sleep(1)
    finally:
        server.shutdown()
    assert pid > 0


@missing
@pytest.mark.parametrize("speedup", [1, 60])
def test_the_local_monitoring_configuration_is_valid(base_settings, tmp_path, speedup):
    """What `cinerec demo` gives Debian's Prometheus (the production files with local targets;
    `--loop` divides the rules' durations): promtool accepts it, and every rule is still there."""
    from cinerec.ops.monitoring import write_configs

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
    from cinerec.ops.pipeline import defs, retrain

    steps = [node.name for node in retrain.graph.nodes_in_topological_order]
    assert steps == ["extract", "train_op", "gate_op", "canary_op"]
    assert {s.name for s in defs.sensors} == {"new_data", "canary_decision"} and len(list(defs.schedules)) == 1
    assert retrain.graph.node_named("extract").definition.retry_policy.max_retries == 2

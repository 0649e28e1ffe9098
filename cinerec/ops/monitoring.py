"""Prometheus and Alertmanager on this machine (Debian's `prometheus`, `prometheus-alertmanager`;
`make monitoring` installs them), as `cinerec demo` runs them next to the loop.

The production files in ``deployment/`` stay the only source of the scrape jobs, rules and routes:
``write_configs`` copies them under ``<data_dir>/monitoring`` with the local addresses (the API,
the job's and the online consumer's /metrics, the API's alert webhook with this run's key), the
people's receivers from the settings ``ops.alert_email_to``, ``smtp_*``, ``slack_webhook_url`` (secrets
in 0600 files beside it) and, for a demo that must show an alert within minutes, every duration of
the rules (windows, offsets, ``for:``) divided by ``speedup`` (never below two scrapes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import yaml

from cinerec.core.settings import PROJECT_ROOT, OpsSettings, Settings

DEPLOYMENT = PROJECT_ROOT / "deployment"
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager")
PROMETHEUS_PORT, ALERTMANAGER_PORT, ALERTMANAGER_CLUSTER_PORT = 9090, 9093, 9094
ONLINE_PORT = 9110                     # `cinerec online --metrics-port`'s default


def missing() -> str | None:
    """Why monitoring cannot run here, or None."""
    if PROMETHEUS is None or ALERTMANAGER is None:
        return "Debian's prometheus and prometheus-alertmanager are not installed (`make monitoring`)"
    if not (DEPLOYMENT / "prometheus" / "rules.yml").is_file():
        return f"the project's deployment files are not here ({DEPLOYMENT})"
    return None


SCRAPE_S = 5
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"(?<![\w.:])(\d+)([smhd])\b")


def faster(duration: str, speedup: int) -> str:
    """Every duration in a PromQL expression or ``for:`` value divided by ``speedup``, in seconds."""
    def scaled(match: re.Match) -> str:
        return f"{max(2 * SCRAPE_S, int(match[1]) * UNITS[match[2]] // speedup)}s"
    return DURATION.sub(scaled, duration) if speedup > 1 else duration


def write_configs(settings: Settings, out: Path, api_key: str, *, speedup: int = 1) -> tuple[Path, Path]:
    """prometheus.yml (+ rules.yml) and alertmanager.yml for this machine; returns their paths."""
    out = out.resolve()                     # Alertmanager reads relative paths from its own directory
    out.mkdir(parents=True, exist_ok=True)
    prometheus = yaml.safe_load((DEPLOYMENT / "prometheus" / "prometheus.yml").read_text())
    api = f"{settings.api.host}:{settings.api.port}"
    local = {"prometheus": f"127.0.0.1:{PROMETHEUS_PORT}", "cinerec-api": api,
             "cinerec-stream": f"127.0.0.1:{settings.streaming.metrics_port}",
             "cinerec-online": f"127.0.0.1:{ONLINE_PORT}"}
    for job in prometheus["scrape_configs"]:
        job["static_configs"] = [{"targets": [local[job["job_name"]]]}]
    prometheus["global"].update(scrape_interval=f"{SCRAPE_S}s", evaluation_interval=f"{SCRAPE_S}s")
    prometheus["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{ALERTMANAGER_PORT}"]}]}]
    rules = yaml.safe_load((DEPLOYMENT / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        group.pop("interval", None)
        for rule in group["rules"]:
            rule["expr"] = faster(rule["expr"], speedup)
            if "for" in rule:
                rule["for"] = faster(rule["for"], speedup)
    (out / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (out / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))

    manager = yaml.safe_load((DEPLOYMENT / "alertmanager" / "alertmanager.yml").read_text())
    manager["route"].update(group_wait="5s", group_interval="30s")
    key_file = secret_file(out / "api-key", api_key)
    for receiver in manager["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://{api}/ops/alerts"
            hook["http_config"]["authorization"]["credentials_file"] = str(key_file)
        if receiver.get("email_configs") or receiver.get("slack_configs"):
            fill_people(receiver, settings.ops, out)
    (out / "alertmanager.yml").write_text(yaml.safe_dump(manager, sort_keys=False))
    return out / "prometheus.yml", out / "alertmanager.yml"


LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


def fill_people(receiver: dict, ops: OpsSettings, out: Path) -> None:
    """The e-mail and Slack configs of ``receiver`` from the settings, each dropped when its
    settings are unset (the demo without them still starts); the SMTP password and the webhook URL
    go to 0600 files next to the configuration, never into it. An SMTP server on this machine needs
    no STARTTLS (``require_tls: false``); any other keeps Alertmanager's default (required)."""
    for stale in ("smtp-password", "slack-webhook-url"):           # an earlier run's, maybe unset since
        (out / stale).unlink(missing_ok=True)
    recipients = ", ".join(a.strip() for a in ops.alert_email_to.split(",") if a.strip())
    emails = receiver.pop("email_configs", [])
    if recipients and ops.smtp_host:
        for email in emails:
            email.update({"to": recipients, "from": ops.alert_email_from, "smarthost": ops.smtp_host})
            for key in ("auth_username", "auth_password_file"):
                email.pop(key, None)
            if ops.smtp_username:
                email.update(auth_username=ops.smtp_username,
                             auth_password_file=str(secret_file(out / "smtp-password", ops.smtp_password)))
            if ops.smtp_host.rsplit(":", 1)[0] in LOCAL_HOSTS:
                email["require_tls"] = False
        receiver["email_configs"] = emails
    slacks = receiver.pop("slack_configs", [])
    if ops.slack_webhook_url:
        url_file = secret_file(out / "slack-webhook-url", ops.slack_webhook_url)
        receiver["slack_configs"] = [{**slack, "api_url_file": str(url_file)} for slack in slacks]


def secret_file(path: Path, value: str) -> Path:
    """``value`` in a file only its owner reads (created 0600: never readable by others, not even briefly)."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(value)
    return path


def start(settings: Settings, api_key: str, *, speedup: int = 1) -> list[subprocess.Popen]:
    """Prometheus and Alertmanager as child processes (logs in <data_dir>/logs)."""
    if PROMETHEUS is None or ALERTMANAGER is None:
        raise RuntimeError(f"cannot start monitoring: {missing()}")
    out = Path(settings.services.data_dir) / "monitoring"
    for store in ("tsdb", "alertmanager"):     # a fresh history: Prometheus would restore old alerts' state
        shutil.rmtree(out / store, ignore_errors=True)
    prometheus_yml, alertmanager_yml = write_configs(settings, out, api_key, speedup=speedup)
    logs = Path(settings.services.data_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "prometheus": [PROMETHEUS, f"--config.file={prometheus_yml}", f"--storage.tsdb.path={out / 'tsdb'}",
                       f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
        "alertmanager": [ALERTMANAGER, f"--config.file={alertmanager_yml}", f"--storage.path={out / 'alertmanager'}",
                         f"--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}",
                         f"--cluster.listen-address=127.0.0.1:{ALERTMANAGER_CLUSTER_PORT}"]}
    return [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=(logs / f"{name}.log").open("a"),
                             start_new_session=True) for name, command in commands.items()]


def firing_alerts() -> list[dict]:
    """Prometheus's firing alerts (labels, annotations, value); [] when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/alerts", timeout=3) as answer:
            alerts = json.loads(answer.read())["data"]["alerts"]
    except (OSError, ValueError, KeyError):
        return []
    return [a for a in alerts if a.get("state") == "firing"]


def counter_samples(url: str) -> list[tuple[str, dict, float]] | None:
    """(counter name with ``_total``, labels, value) of every counter a /metrics page exports;
    None when it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return [(sample.name, sample.labels, sample.value) for family in text_string_to_metric_families(text)
            if family.type == "counter" for sample in family.samples if sample.name.endswith("_total")]

"""Alerts reach people: every alert is routed to the e-mail and Slack-compatible receiver, the local
configuration takes them from the settings (secrets in files, never in the configuration), and an
alert fired through Debian's Alertmanager arrives at a real SMTP server (aiosmtpd) and at an HTTP
receiver of Slack's webhook JSON, both carrying the alert's summary."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from alert_helpers import ALERTMANAGER, AMTOOL, alertmanager, post_alerts

from cinerec.ops.monitoring import write_configs
from cinerec.ops.services._process import free_port

PRODUCTION = Path(__file__).resolve().parent.parent / "deployment" / "alertmanager" / "alertmanager.yml"
SMTP_USER, SMTP_PASSWORD = "cinerec-alerts", "smtp-secret-7f3a"
SUMMARY = "API p99 latency above 50 ms on /users/<user_id>/recommendations"
no_amtool = pytest.mark.skipif(AMTOOL is None, reason="Debian's prometheus-alertmanager (amtool) is not installed")


def receivers(config: Path) -> dict[str, dict]:
    return {r["name"]: r for r in yaml.safe_load(config.read_text())["receivers"]}


@no_amtool
@pytest.mark.parametrize("labels, expected", [("alertname=ApiLatencyHigh severity=page", "people"),
                                               ("alertname=RatingDrift action=retrain", "retrain,people")])
def test_every_alert_reaches_the_people_and_retrain_alerts_also_the_api(labels, expected):
    routed = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={PRODUCTION}", *labels.split()],
                            capture_output=True, text=True)
    assert routed.stdout.strip() == expected, routed.stdout + routed.stderr
    people = receivers(PRODUCTION)["people"]
    assert people["email_configs"][0]["send_resolved"] and people["slack_configs"][0]["send_resolved"]
    assert "api_url" not in people["slack_configs"][0] and "auth_password" not in people["email_configs"][0]


def test_unset_receivers_are_dropped_and_a_remote_smtp_server_keeps_starttls(base_settings, tmp_path):
    _, config = write_configs(base_settings, tmp_path / "none", "key")
    assert "email_configs" not in receivers(config)["people"] and "slack_configs" not in receivers(config)["people"]
    remote = base_settings.replace(ops__alert_email_to="oncall@example.org", ops__smtp_host="smtp.example.org:587")
    _, config = write_configs(remote, tmp_path / "remote", "key")
    mail = receivers(config)["people"]["email_configs"][0]
    assert mail["smarthost"] == "smtp.example.org:587" and "require_tls" not in mail and "auth_username" not in mail
    assert "slack_configs" not in receivers(config)["people"]
    if AMTOOL:
        assert subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True).returncode == 0


class Mailbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def smtp_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Only the configured user with the password from the settings gets in."""
    ok = (auth_data.login, auth_data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class Hooks(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]]

    def do_POST(self):  # noqa: N802 - http.server's hook name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free port that asks for AUTH PLAIN without TLS (it is on this machine;
    Alertmanager's LOGIN expects Go's challenge texts, not aiosmtpd's)."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=smtp_login,
                            auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    yield controller.port, mailbox
    controller.stop()


@pytest.fixture
def webhook_server():
    """An HTTP receiver of Slack's incoming-webhook posts on a free port."""
    handler = type("Handler", (Hooks,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler.received
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed")
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_alert_reaches_the_mailbox_and_the_slack_webhook(base_settings, tmp_path, smtp_server, webhook_server):
    (smtp_port, mailbox), (hook_port, posts) = smtp_server, webhook_server
    hook_url = f"http://127.0.0.1:{hook_port}/services/T000/B000/hook-secret-91c2"
    settings = base_settings.replace(
        ops__alert_email_to="oncall@example.org, second@example.org", ops__alert_email_from="cinerec@example.org",
        ops__smtp_host=f"127.0.0.1:{smtp_port}", ops__smtp_username=SMTP_USER, ops__smtp_password=SMTP_PASSWORD,
        ops__slack_webhook_url=hook_url)
    _, config = write_configs(settings, tmp_path, "api-key-5e1d")
    written = config.read_text()
    for secret in (SMTP_PASSWORD, hook_url, "hook-secret", "api-key-5e1d"):
        assert secret not in written
    for name in ("smtp-password", "slack-webhook-url", "api-key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True).returncode == 0

    with alertmanager(config, tmp_path) as (port, log):
        post_alerts(port, [{"labels": {"alertname": "ApiLatencyHigh", "severity": "page", "route": "/users"},
                            "annotations": {"summary": SUMMARY}}], log)
        deadline = time.monotonic() + 60                       # group_wait 5 s in the local configuration
        while not (mailbox.messages and posts):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

    message = mailbox.messages[0]
    body = message.get_body(("plain",)).get_content()
    print(f"\nSubject: {message['Subject']}\nTo: {message['To']}\n{body}")
    assert message["Subject"] == f"[Cinerec FIRING] ApiLatencyHigh: {SUMMARY}"
    assert {a.addr_spec for a in message["To"].addresses} == {"oncall@example.org", "second@example.org"}
    assert message["From"] == "cinerec@example.org"
    assert "FIRING ApiLatencyHigh (page) since " in body and SUMMARY in body
    path, slack = posts[0]
    print(json.dumps(slack, indent=1))
    assert path == "/services/T000/B000/hook-secret-91c2"     # the URL came from its file
    attachment = slack["attachments"][0]
    assert attachment["title"] == f"[Cinerec FIRING] ApiLatencyHigh: {SUMMARY}" and SUMMARY in attachment["text"]

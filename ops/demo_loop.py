"""`cinerec demo --loop`: the operations loop on the synthetic world, printed as a timeline.

    baseline   simulated people ask for recommendations, click and rate (champion's CTR)
    drift      the rating feed and the people restart with a fraction of tastes turned upside down
    alert      Prometheus (the project's rules, time scaled by ``monitoring.start(speedup=)``)
               fires a retrain alert; Alertmanager calls the API's webhook
    retrain    the webhook's `cinerec retrain --now`: extract, train, gate, canary
    canary     judged every ``LOOK_S`` on online CTR (`cinerec canary decide`) until decided
    recovery   the champion's CTR after the decision, against the baseline and the drifted phase

CTR per phase comes from the online consumer's counters (``cinerec online``'s /metrics), read at
the phase boundaries; every line carries the figures it is based on. Nothing is scripted beyond
the drift: each later step happens only when the system does it (or the timeline says it did not).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import monitoring
from core.settings import Settings

SPEEDUP = 60             # the rules' windows: 1 h → 1 min, 15 min → 15 s
BASELINE_S = 100         # the CTR-drop rule compares with "an hour ago": 1 min here, plus its window
DRIFT = 0.8
LOOK_S = 10
RECOVERY_S = 90
STEP_TIMEOUT_S = 600


class Timeline:
    def __init__(self):
        self.started, self.lines = time.monotonic(), []

    def say(self, text: str, **figures) -> None:
        elapsed = int(time.monotonic() - self.started)
        line = f"+{elapsed // 60:02d}:{elapsed % 60:02d}  {text}" + (f"  {json.dumps(figures)}" if figures else "")
        self.lines.append({"at_s": elapsed, "what": text, **figures})
        print(f"loop: {line}", file=sys.stderr, flush=True)


def run(settings: Settings, restart_people: Callable[[float], None], healthy: Callable[[], None]) -> dict:
    """The timeline, once the demo's children run; ``restart_people(drift)`` restarts the rating
    feed and the closed-loop people with that drift; ``healthy()`` raises when the loop broke
    (checked at every poll). Returns the timeline and its figures."""
    def wait(check: Callable[[], object], what: str, *, every_s: float = 2.0, timeout_s: float = STEP_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while True:
            healthy()
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout_s:.0f} s")
            time.sleep(every_s)

    def pause(seconds: float) -> None:
        until = time.monotonic() + seconds
        wait(lambda: time.monotonic() >= until, "pause", every_s=1.0, timeout_s=seconds + 10)

    from .canary import look
    from search import canary
    from search.client import connect

    es, timeline = connect(settings.elasticsearch), Timeline()
    data_dir = Path(settings.services.data_dir)
    retrain_pid, retrain_log = data_dir / "retrain.pid", data_dir / "logs" / "retrain.log"
    if canary.running(es):
        raise RuntimeError("a canary is running: `cinerec canary decide` or `cinerec canary abort` it first")
    retrain_pid.unlink(missing_ok=True)
    wait(lambda: _counters() is not None, "the online consumer's /metrics")
    start = _counters()
    timeline.say(f"baseline: people click on the champion's lists for {BASELINE_S} s")
    pause(BASELINE_S)
    drift_at = _counters()
    baseline = _ctr(start, drift_at, "champion")
    timeline.say(f"drift: the tastes of {DRIFT:.0%} of the users turn upside down", champion_ctr=baseline)
    restart_people(DRIFT)

    alert = wait(lambda: next((a for a in monitoring.firing_alerts()
                               if a["labels"].get("action") == "retrain"), None), "a retrain alert")
    drifted = _ctr(drift_at, _counters(), "champion")
    timeline.say(f"alert {alert['labels']['alertname']} fires: {alert['annotations'].get('summary', '')}",
                 champion_ctr_since_drift=drifted, value=alert.get("value"))
    wait(retrain_pid.is_file, "the webhook's retraining")
    pid = int(retrain_pid.read_text())
    timeline.say(f"retraining started by Alertmanager's webhook (pid {pid})")
    started = wait(lambda: canary.running(es) or (not _alive(pid) and "ended"), "the retraining")
    if started == "ended":
        timeline.say("retraining ended without a canary", log=_tail(retrain_log))
        return {"timeline": timeline.lines, "baseline_ctr": baseline, "drifted_ctr": drifted}
    canary_at = _counters()
    timeline.say(f"canary: challenger v{started['version']} serves {started['fraction']:.0%} of users "
                 f"(champion v{started['champion_version']})",
                 champion_ctr_since_drift=_ctr(drift_at, canary_at, "champion"))
    report = wait(lambda: _decided(look(settings, act=True)), "the canary's decision", every_s=LOOK_S)
    decision = report["decision"]
    timeline.say(f"canary decided: {decision['action']}", **{k: v for k, v in decision.items() if k != "action"})
    decided_at = _counters()
    pause(RECOVERY_S)
    after = _ctr(decided_at, _counters(), "champion")
    timeline.say("after the decision", champion_ctr=after, before_drift=baseline, drifted=drifted)
    return {"timeline": timeline.lines, "baseline_ctr": baseline, "drifted_ctr": drifted,
            "canary": report, "after_ctr": after}


def _decided(report: dict) -> dict | None:
    return report if report["decision"]["action"] != "wait" else None


def _counters() -> dict[str, dict[str, float]] | None:
    """{variant: {impressions, clicks}} from `cinerec online`'s /metrics; None when it does not answer."""
    samples = monitoring.counter_samples(f"http://127.0.0.1:{monitoring.ONLINE_PORT}/metrics")
    if samples is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for name in ("impressions", "clicks"):
        for sample, labels, value in samples:
            if sample == f"cinerec_online_{name}_total":
                out.setdefault(labels["variant"], {})[name] = value
    return out


def _ctr(before: dict, after: dict, variant: str) -> float | None:
    shown = after.get(variant, {}).get("impressions", 0) - before.get(variant, {}).get("impressions", 0)
    clicked = after.get(variant, {}).get("clicks", 0) - before.get(variant, {}).get("clicks", 0)
    return round(clicked / shown, 4) if shown else None


def _alive(pid: int) -> bool:
    """The process runs (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _tail(path: Path, lines: int = 3) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.is_file() else ""

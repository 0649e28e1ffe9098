"""`cinerec demo --loop`: the operations loop on the synthetic world, printed as a timeline.

    baseline   simulated people ask for recommendations, click and rate (champion's CTR)
    drift      the rating feed and the people restart with a fraction of tastes turned upside down
    recovery   the champion forgets (``HALF_LIFE_S``): its CTR minute by minute after the drift
    alert      Prometheus (the project's rules, time scaled by ``monitoring.start(speedup=)``)
               fires a retrain alert when the CTR drops long enough; Alertmanager calls the webhook
    retrain    a run on the scheduler (Dagster), asked by the webhook or by the new_data sensor
               (every ``NEW_DATA_CHECK_S`` here), whichever comes first: extract, train, gate, canary
    canary     judged by the scheduler's canary_decision sensor on online CTR until decided
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
from typing import TypedDict

from cinerec.core.settings import Settings

from . import monitoring, scheduler

SPEEDUP = 60             # the rules' windows: 1 h → 1 min, 15 min → 15 s
BASELINE_S = 100         # the CTR-drop rule compares with "an hour ago": 1 min here, plus its window
DRIFT = 0.8
LOOK_S = 10
RECOVERY_S = 90
STEP_TIMEOUT_S = 600
RECOVERED = 0.9          # the loop recovers when the CTR after the decision is ≥ 90 % of the baseline's
# Forgetting on the feed's clock: at 200 ratings/s a user of the 1,000 rates 12 films a minute, and
# the world's 60,000 ratings are dated over the 300 s they would take (`data generate
# --history-seconds`); a minute's half-life makes a vector follow its user's last few minutes.
HALF_LIFE_S = 60
NEW_DATA_CHECK_S = 60    # the new_data sensor's interval in the loop (300 s by default)

Counters = dict[str, dict[str, float]]   # {variant: {impressions, clicks}}


class _Minute(TypedDict):   # the minute-by-minute CTR after the drift: when it began, its counters, its number
    at: float
    counters: Counters | None
    n: int


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
    def wait(check: Callable[[], object], what: str, *, every_s: float = 2.0, timeout_s: float = STEP_TIMEOUT_S,
             required: bool = True):
        deadline = time.monotonic() + timeout_s
        while True:
            healthy()
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                if not required:
                    return None
                raise TimeoutError(f"no {what} within {timeout_s:.0f} s")
            time.sleep(every_s)

    def pause(seconds: float) -> None:
        until = time.monotonic() + seconds
        wait(lambda: time.monotonic() >= until, "pause", every_s=1.0, timeout_s=seconds + 10)

    from cinerec.platform.elasticsearch import connect
    from cinerec.search import canary

    es, timeline = connect(settings.elasticsearch), Timeline()
    if canary.running(es):
        raise RuntimeError("a canary is running: `cinerec canary decide` or `cinerec canary abort` it first")
    wait(lambda: _counters() is not None, "the online consumer's /metrics")
    start = _counters()
    timeline.say(f"baseline: people click on the champion's lists for {BASELINE_S} s (it forgets: a rating's weight "
                 f"halves every {HALF_LIFE_S} s before its user's latest)")
    pause(BASELINE_S)
    drift_at = _counters()
    baseline = _ctr(start, drift_at, "champion")
    timeline.say(f"drift: the tastes of {DRIFT:.0%} of the users turn upside down", champion_ctr=baseline)
    drifted_s = time.time()
    restart_people(DRIFT)
    figures: dict[str, object] = {"baseline_ctr": baseline}
    marks = [("baseline", start), ("drift", drift_at)]       # the phases: each runs to the next mark

    def mark(name: str) -> Counters | None:
        marks.append((name, _counters()))
        return marks[-1][1]

    def done(**more) -> dict:
        mark("end")
        by_phase = {name: _ctr(at, marks[i + 1][1], "champion") for i, (name, at) in enumerate(marks[:-1])}
        figures["ctr_by_phase"] = by_phase
        timeline.say("champion's CTR per phase", **by_phase)
        after = more.get("after_ctr")
        verdict = (after / baseline if after is not None and baseline else None)
        timeline.say(f"recovery: {'yes' if verdict is not None and verdict >= RECOVERED else 'no'} — the CTR after "
                     f"is {verdict:.0%} of the baseline's (target ≥ {RECOVERED:.0%})" if verdict is not None
                     else "recovery: not measured", **{k: v for k, v in more.items() if k != "canary"})
        return {"timeline": timeline.lines, **figures, **more, "recovered_share": verdict}

    # Whatever comes first asks the scheduler for a retraining: the alert's webhook, or the new_data
    # sensor once the streamed ratings match the world's. Meanwhile: the champion's CTR minute by minute.
    minute: _Minute = {"at": time.monotonic(), "counters": drift_at, "n": 0}
    alerted: list[dict] = []

    def retraining_asked() -> dict | None:
        if time.monotonic() - minute["at"] >= 60:
            now = _counters()
            minute["n"] += 1
            timeline.say(f"minute {minute['n']} after the drift",
                         champion_ctr=_ctr(minute["counters"], now, "champion"))
            minute["at"], minute["counters"] = time.monotonic(), now
        if not alerted:
            alert = next((a for a in monitoring.firing_alerts() if a["labels"].get("action") == "retrain"), None)
            if alert is not None:
                alerted.append(alert)
                timeline.say(f"alert {alert['labels']['alertname']} fires: {alert['annotations'].get('summary', '')}",
                             champion_ctr_since_drift=_ctr(drift_at, _counters(), "champion"), value=alert.get("value"))
        return next(iter(scheduler.runs(settings, created_after=drifted_s)), None)

    run = wait(retraining_asked, "a retraining run on the scheduler", required=False)
    figures["drifted_ctr"] = _ctr(drift_at, _counters(), "champion")
    if run is None:
        timeline.say(f"no retraining within {STEP_TIMEOUT_S} s of the drift",
                     champion_ctr_since_drift=figures["drifted_ctr"])
        recovering_at = mark("after")
        pause(RECOVERY_S)
        return done(after_ctr=_ctr(recovering_at, _counters(), "champion"), drifted_ctr=figures["drifted_ctr"])
    mark("retraining")
    timeline.say(f"retraining run {run['run_id'][:8]} submitted to the scheduler (trigger {run['trigger']}): "
                 f"{scheduler.url(settings)}/runs/{run['run_id']}", champion_ctr_since_drift=figures["drifted_ctr"])
    started = wait(lambda: canary.running(es) or (scheduler.run_report(settings, run["run_id"])["status"]
                                                  in scheduler.FINISHED and "ended"), "the retraining")
    report = scheduler.run_report(settings, run["run_id"])
    if started == "ended":
        timeline.say(f"retraining run ended {report['status']} without a canary", steps=report["steps"])
        decided_at = mark("after")
        pause(RECOVERY_S)
        return done(after_ctr=_ctr(decided_at, _counters(), "champion"), drifted_ctr=figures["drifted_ctr"])
    canary_at = mark("canary")
    timeline.say(f"canary: challenger v{started['version']} serves {started['fraction']:.0%} of users "
                 f"(champion v{started['champion_version']}); run steps {report['steps']}",
                 champion_ctr_since_drift=_ctr(drift_at, canary_at, "champion"))
    seen: set[float] = set()

    def decided() -> dict | None:
        for tick in reversed(scheduler.ticks(settings, "canary_decision", limit=5)):
            if tick["at"] not in seen and tick["at"] > started["started_ms"] / 1000:
                seen.add(tick["at"])
                timeline.say(f"canary_decision sensor tick: {tick['skip_reason'] or tick['error'] or tick['status']}")
        doc = canary.current(es)
        return doc if doc and doc.get("status") in ("promoted", "aborted") else None

    doc = wait(decided, "the canary sensor's decision", every_s=LOOK_S)
    decision = doc["decision"]
    timeline.say(f"canary decided by the scheduler: {decision['action']}",
                 **{k: v for k, v in decision.items() if k != "action"})
    decided_at = mark("after")
    pause(RECOVERY_S)
    return done(after_ctr=_ctr(decided_at, _counters(), "champion"), canary={"decision": decision},
                drifted_ctr=figures["drifted_ctr"])


def _counters() -> Counters | None:
    """{variant: {impressions, clicks}} from `cinerec online`'s /metrics; None when it does not answer."""
    samples = monitoring.counter_samples(f"http://127.0.0.1:{monitoring.ONLINE_PORT}/metrics")
    if samples is None:
        return None
    out: Counters = {}
    for name in ("impressions", "clicks"):
        for sample, labels, value in samples:
            if sample == f"cinerec_online_{name}_total":
                out.setdefault(labels["variant"], {})[name] = value
    return out


def _ctr(before: Counters | None, after: Counters | None, variant: str) -> float | None:
    """None when nothing was shown, or when /metrics did not answer at either end."""
    if before is None or after is None:
        return None
    shown = after.get(variant, {}).get("impressions", 0) - before.get(variant, {}).get("impressions", 0)
    clicked = after.get(variant, {}).get("clicks", 0) - before.get(variant, {}).get("clicks", 0)
    return round(clicked / shown, 4) if shown else None

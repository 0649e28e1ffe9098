"""The canary's logic: start one (the challenger's own indices, a fraction of users), look at its
online numbers and carry out ``core.canary.decide``'s decision (promote or abort), recorded with the
challenger's model version. `cinerec canary …`, the retraining pipeline and the demo's loop use it."""

from __future__ import annotations

import json
import time

from cinerec.core.settings import Settings

from .indexing import build_served_indices
from .monitoring import counter_samples


def _es(settings: Settings):
    from cinerec.platform.elasticsearch import connect

    return connect(settings.elasticsearch)


def start_canary(settings: Settings, fraction: float) -> dict:
    """Builds the challenger's own indices (aliases untouched) and starts serving ``fraction`` of
    users from them; the canary document. The command and the retraining pipeline both use it."""
    from cinerec.platform.registry import CHALLENGER, CHAMPION, Registry
    from cinerec.search import canary

    registry = Registry(settings)
    challenger, champion = registry.version(CHALLENGER), registry.version(CHAMPION)
    if challenger is None or champion is None or challenger.version == champion.version:
        raise LookupError("a canary needs a champion and another challenger: run `cinerec train` first")
    if not 0 < fraction < 1:
        raise ValueError("--fraction must be between 0 and 1")
    build_served_indices(settings, CHALLENGER, swap=False)
    return canary.start(_es(settings), version=str(challenger.version), champion_version=str(champion.version),
                        fraction=fraction)


def look(settings: Settings, *, act: bool) -> dict:
    """The canary's numbers and decision at this look; with ``act``, carries it out."""
    from cinerec.core.canary import Arm, decide
    from cinerec.search import canary
    from cinerec.streaming.online import arms_since

    es = _es(settings)
    doc = canary.running(es)
    if doc is None:
        raise LookupError("no canary is running: `cinerec canary start --fraction 0.1`")
    counts = arms_since(es, doc["started_ms"], after_ms=doc.get("previous_decided_ms"))
    errors = _variant_requests(settings)
    arms = {v: Arm(int(counts.get(v, {}).get("impressions") or 0), int(counts.get(v, {}).get("clicks") or 0),
                   *errors.get(v, (0, 0))) for v in ("champion", "challenger")}
    decision = decide(arms["champion"], arms["challenger"], doc["looks"] + 1)
    report = {"canary": {k: doc[k] for k in ("version", "champion_version", "fraction", "started_ms")},
              "online": counts, "decision": decision.as_dict()}
    if act:
        canary.update(es, looks=doc["looks"] + 1, decision=decision.as_dict())
        if decision.action != "wait":
            report["result"] = finish(settings, decision.action, decision.as_dict())
    return report


def finish(settings: Settings, action: str, decision: dict) -> dict:
    """Promotes (champion alias and served indices to the challenger) or aborts the canary, and
    records the decision with the challenger's model version."""
    from cinerec.batch.indexing import serve_version
    from cinerec.platform.registry import Registry
    from cinerec.search import canary

    es, registry = _es(settings), Registry(settings)
    doc = canary.current(es)
    if doc is None:
        raise LookupError("no canary ever ran: `cinerec canary start --fraction 0.1`")
    version = doc["version"]
    registry.client.set_model_version_tag(registry.name, version, "canary", json.dumps(
        {"action": action, **decision, "fraction": doc["fraction"], "started_ms": doc["started_ms"]}))
    if action == "promote":
        registry.client.set_model_version_tag(registry.name, version, "previous_champion", doc["champion_version"])
        registry.client.set_registered_model_alias(registry.name, "champion", version)
        serve_version(es, version, settings.elasticsearch.keep_versions)
    canary.update(es, status="promoted" if action == "promote" else "aborted", decided_ms=int(time.time() * 1000),
                  decision={"action": action, **decision})
    return {"action": action, "version": version, "champion_now": version if action == "promote"
            else doc["champion_version"]}


def _variant_requests(settings: Settings) -> dict[str, tuple[int, int]]:
    """(requests, errors) per variant from the API's /metrics; empty when the API is not reachable."""
    out: dict[str, list[int]] = {}
    for name, labels, value in counter_samples(f"http://{settings.api.host}:{settings.api.port}/metrics") or []:
        if name == "cinerec_variant_requests_total":
            pair = out.setdefault(labels["variant"], [0, 0])
            pair[0] += int(value)
            pair[1] += int(value) if labels["outcome"] == "error" else 0
    return {v: (r, e) for v, (r, e) in out.items()}

"""The canary's state in Elasticsearch (index ``canary``, one document ``current``), read by the
API to route users and written by ``cinerec canary``; the statistics are ``core.canary``'s."""

from __future__ import annotations

import time

INDEX, DOC = "canary", "current"


def current(es) -> dict | None:
    """The canary document, or None when none ever ran (or the index is missing)."""
    found = es.options(ignore_status=404).get(index=INDEX, id=DOC)
    return found.get("_source") if found.get("found") else None


def running(es) -> dict | None:
    doc = current(es)
    return doc if doc and doc.get("status") == "running" else None


def start(es, *, version: str, champion_version: str, fraction: float) -> dict:
    """A new canary document; ``previous_decided_ms``: when the canary it replaces was decided (its
    online counts end there)."""
    now, previous = int(time.time() * 1000), current(es)
    doc = {"version": str(version), "champion_version": str(champion_version), "fraction": float(fraction),
           "salt": str(now), "status": "running", "started_ms": now, "decided_ms": None, "looks": 0, "decision": None,
           "previous_decided_ms": (previous or {}).get("decided_ms")}
    es.index(index=INDEX, id=DOC, document=doc, refresh=True)
    return doc


def update(es, **fields) -> dict:
    es.update(index=INDEX, id=DOC, doc=fields, refresh=True)
    doc = current(es)
    assert doc is not None          # es.update raised NotFoundError if there was none
    return doc

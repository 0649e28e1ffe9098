"""Versioned indices behind aliases, atomic alias swaps, retention, and bulk writes.

Every index is reached through an alias (``films``, ``users``, ``ratings``) over a versioned
index ``<alias>-v<version>``. A rebuild writes a new version, then one ``_aliases`` call moves
the alias, so readers never see a half-built index; older versions are kept up to a limit.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

MAPPINGS = Path(__file__).resolve().parent / "mappings"


def mapping(alias: str, *, dims: int | None = None) -> dict:
    """The index body for ``alias`` from ``search/mappings/<alias>.json``; ``dims`` sets vectors."""
    body = json.loads((MAPPINGS / f"{alias}.json").read_text())
    vector = body["mappings"]["properties"].get("vector")
    if vector is not None:
        if not dims:
            raise ValueError(f"{alias} has a vector field: give its dimension")
        vector["dims"] = int(dims)
    return copy.deepcopy(body)


def versioned_name(alias: str, version: int | str) -> str:
    return f"{alias}-v{version}"


def create_index(es: Elasticsearch, alias: str, version: int | str, *, dims: int | None = None,
                 meta: dict | None = None) -> str:
    """Creates ``<alias>-v<version>`` (replacing a leftover of a failed build) and returns its name;
    ``meta``: the mapping's ``_meta`` (the ``films`` index: how its model ranks, ``index_meta``)."""
    name = versioned_name(alias, version)
    if es.indices.exists(index=name) and name not in current_indices(es, alias):
        es.indices.delete(index=name)
    if not es.indices.exists(index=name):
        body = mapping(alias, dims=dims)
        mappings = {**body["mappings"], **({"_meta": meta} if meta else {})}
        es.indices.create(index=name, settings=body["settings"], mappings=mappings)
    else:
        add_missing_fields(es, alias, name)
    return name


def index_meta(es: Elasticsearch, index: str) -> dict:
    """The ``_meta`` of an index's mapping ({} when it has none)."""
    return next(iter(es.indices.get_mapping(index=index).values()))["mappings"].get("_meta", {})


def add_missing_fields(es: Elasticsearch, alias: str, index: str | None = None) -> list[str]:
    """Adds the fields of ``alias``'s mapping file that ``index`` (default: the alias) lacks, so an
    index built by an older version takes the documents this version writes. Returns them."""
    fields = json.loads((MAPPINGS / f"{alias}.json").read_text())["mappings"]["properties"]
    added: list[str] = []
    for name, current in es.indices.get_mapping(index=index or alias).items():
        missing = {f: spec for f, spec in fields.items() if f not in current["mappings"].get("properties", {})}
        if missing:
            es.indices.put_mapping(index=name, properties=missing)
            added += sorted(missing)
    return added


# Indices appended to for good (one version): the streaming job's events and dead letters, the
# online metrics of the closed loop, the canary's state.
RATINGS, DEAD_LETTERS = "ratings", "dead_letters"
EVENT_INDICES = (RATINGS, DEAD_LETTERS, "online_metrics", "canary")


def ensure_event_indices(es: Elasticsearch) -> list[str]:
    """Creates the indices the streaming job appends to (``ratings``: one document per accepted
    event; ``dead_letters``: one per dead letter) when missing; returns the ones it created."""
    created = []
    for alias in EVENT_INDICES:
        if not current_indices(es, alias):
            swap_alias(es, alias, create_index(es, alias, 1))
            created.append(alias)
    return created


def current_indices(es: Elasticsearch, alias: str) -> list[str]:
    if not es.indices.exists_alias(name=alias):
        return []
    return sorted(es.indices.get_alias(name=alias))


def swap_alias(es: Elasticsearch, alias: str, index: str) -> None:
    """Points ``alias`` at ``index`` only, in one atomic ``_aliases`` request."""
    actions = [{"remove": {"index": old, "alias": alias}} for old in current_indices(es, alias) if old != index]
    actions.append({"add": {"index": index, "alias": alias}})
    es.indices.update_aliases(actions=actions)


def versions(es: Elasticsearch, alias: str) -> list[str]:
    """Existing ``<alias>-v<n>`` indices, oldest first."""
    pattern = re.compile(rf"^{re.escape(alias)}-v(\d+)$")
    found = [m for m in map(pattern.match, es.indices.get(index=f"{alias}-v*", expand_wildcards="open")) if m]
    return [m.string for m in sorted(found, key=lambda m: int(m.group(1)))]


def prune(es: Elasticsearch, alias: str, keep: int) -> list[str]:
    """Deletes all but the newest ``keep`` versions; never the one the alias points at."""
    live = set(current_indices(es, alias))
    old = [n for n in versions(es, alias) if n not in live]
    doomed = old[: max(0, len(old) - max(keep - len(live), 0))]
    for name in doomed:
        es.indices.delete(index=name)
    return doomed


def bulk_write(es: Elasticsearch, index: str, documents: Iterable[tuple[str, dict]], *,
               op: str = "index", chunk_size: int = 500, max_retries: int = 5) -> dict:
    """Bulk index/update/delete ``(id, source)`` pairs. Deterministic ids make a re-run idempotent;
    rejected chunks (HTTP 429) are retried with exponential backoff; other failures are returned
    (``errors``: each failed item as Elasticsearch reported it)."""
    def actions() -> Iterator[dict]:
        for doc_id, source in documents:
            if op == "update":
                yield {"_op_type": "update", "_index": index, "_id": doc_id, "doc": source, "doc_as_upsert": True}
            elif op == "delete":
                yield {"_op_type": "delete", "_index": index, "_id": doc_id}
            else:
                yield {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source}

    started = time.perf_counter()
    ok, failed = 0, []
    for success, info in helpers.streaming_bulk(es, actions(), chunk_size=chunk_size, max_retries=max_retries,
                                                initial_backoff=0.2, max_backoff=5, raise_on_error=False,
                                                raise_on_exception=True):
        if success:
            ok += 1
        else:
            failed.append(info)
    return {"index": index, "written": ok, "failed": len(failed), "errors": failed,
            "seconds": round(time.perf_counter() - started, 3)}

"""The data catalog: every topic, index, table and file Cinerec keeps, and for each field its type,
whether it is personal data, how long it is kept, the lawful basis, and who writes and reads it.

Types of index fields and table columns are read from the code (``search/mappings/*.json``, the
SQLAlchemy tables) when the catalog is rendered; the rest is stated here, next to each store.
``cinerec privacy catalog`` prints it as Markdown (committed as ``docs/data-catalog.md``); a test fails
when a mapping, table, topic or event has a field this catalog does not describe, or when the
committed document is stale.

Personal data: anything tied to one user id. Ids of MovieLens and simulator users are research or
synthetic data; ids from ``web.first_user_id`` up are people (``core.privacy``). Names are never
stored; e-mail addresses only in the accounts table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MAPPINGS = Path(__file__).resolve().parent.parent / "search" / "mappings"
USER = "personal (user id)"
PERSON = "personal (identifies a person)"
NOT = "no"
CONSENT_OR_RESEARCH = "consent (people) / research (MovieLens, simulator)"
SERVICE = "contract: running the service for the person"


@dataclass(frozen=True)
class Store:
    kind: str                                   # topic | index | table | file
    name: str
    purpose: str
    writers: str
    readers: str
    retention: str
    basis: str
    fields: dict[str, tuple[str, str]]          # field -> (personal?, what it holds)
    types: dict[str, str] = field(default_factory=dict)   # stated types (mapped stores read theirs)


def _event(user: str = USER) -> dict[str, tuple[str, str]]:
    return {"event_id": (NOT, "UUID of the rating event"), "user_id": (user, "who rated"),
            "movie_id": (NOT, "the film"), "rating": (USER, "0.5-5.0 stars"), "ts": (USER, "event time, epoch ms"),
            "source": (NOT, "web, api, simulator or replay")}


STORES = [
    Store("topic", "ratings", "rating events (key = user id)", "web app, POST /ratings, simulator, replay",
          "streaming job", "kafka.retention_days (7); erased users' events are skipped until they expire",
          CONSENT_OR_RESEARCH, _event(),
          {"event_id": "string", "user_id": "integer", "movie_id": "integer", "rating": "float", "ts": "long",
           "source": "string"}),
    Store("topic", "ratings.dlq", "events the job could not use, with the reason", "streaming job",
          "operators", "kafka.retention_days (7)", "legitimate interest: data quality",
          {"reason": (NOT, "reason code"), "detail": (USER, "what was wrong (may quote the event)"),
           "partition": (NOT, "source partition"), "offset": (NOT, "source offset"),
           "ts": (NOT, "when the broker received the event"), "original": (USER, "the original bytes")},
          {"reason": "string", "detail": "string", "partition": "integer", "offset": "long", "ts": "long",
           "original": "string"}),
    Store("topic", "users.privacy", "each user's latest consent and erasure (compacted, key = user id)",
          "web app, cinerec privacy erase", "streaming job, training, indexing, replay",
          "forever (compacted: the latest event per user)", "legal obligation: proof of consent and erasure",
          {"user_id": (USER, "whose choice"), "personalisation": (USER, "consent to personalisation"),
           "analytics": (USER, "consent to analytics"), "erased": (USER, "the user asked to be erased"),
           "ts": (USER, "when"), "version": (NOT, "version of the privacy text")},
          {"user_id": "integer", "personalisation": "boolean", "analytics": "boolean", "erased": "boolean",
           "ts": "long", "version": "string"}),
    Store("topic", "feedback", "impressions and clicks (key = user id; core.feedback)",
          "closed-loop simulator, any front end that shows lists", "online metrics (cinerec online)",
          "kafka.retention_days (7)", CONSENT_OR_RESEARCH,
          {"kind": (NOT, "impression or click"), "event_id": (NOT, "UUID"), "request_id": (NOT, "the list shown"),
           "user_id": (USER, "who was shown / clicked"), "variant": (NOT, "champion or challenger"),
           "movie_ids": (USER, "films shown, in order"), "movie_id": (USER, "film clicked"),
           "rank": (USER, "position clicked"), "ts": (USER, "when"), "source": (NOT, "who sent it")},
          {"kind": "string", "event_id": "string", "request_id": "string", "user_id": "integer", "variant": "string",
           "movie_ids": "integer[]", "movie_id": "integer", "rank": "integer", "ts": "long", "source": "string"}),
    Store("topic", "cinerec.health", "produce/consume round trip of health checks", "cinerec services",
          "cinerec services", "broker default", "not personal", {"value": (NOT, "a random token")},
          {"value": "string"}),
    Store("index", "films", "film catalog and vectors", "cinerec index", "API, web app",
          "until the next index version", "not personal",
          {"movie_id": (NOT, "film id"), "title": (NOT, "title"), "title_search": (NOT, "title, accents folded"),
           "year": (NOT, "release year"), "genres": (NOT, "genres"), "tags": (NOT, "user tags, joined"),
           "vector": (NOT, "ALS item factors"), "neighbours": (NOT, "the served model's stored neighbour "
                                                                     "lists (item-item parts)"),
           "model_version": (NOT, "model that made the vector")}),
    Store("index", "film_stats", "film statistics the stream rewrites every batch", "cinerec index, streaming job",
          "API, web app, dashboards", "until the next index version", "not personal (aggregates)",
          {"movie_id": (NOT, "film id"), "title": (NOT, "title"), "year": (NOT, "release year"),
           "genres": (NOT, "genres"),
           "rating_count": (NOT, "ratings (all users, erased ones removed)"), "rating_mean": (NOT, "mean rating"),
           "bayesian_avg": (NOT, "mean pulled to the global mean"), "like_count": (NOT, "ratings ≥ 4"),
           "trending": (NOT, "ratings in the trending window"), "trending_buckets": (NOT, "per-minute counts"),
           "trending_until": (NOT, "when the oldest bucket leaves the window")}),
    Store("index", "film_lists", "each film's also-watched and similar lists", "cinerec index, streaming job",
          "API, web app", "until the next index version", "not personal (aggregates)",
          {"movie_id": (NOT, "film id"), "title": (NOT, "title"), "also_watched": (NOT, "co-liked films, scored"),
           "similar": (NOT, "nearest films by vector")}),
    Store("index", "users", "each user's recommendation profile", "cinerec index, streaming job", "API, web app",
          "until erased", CONSENT_OR_RESEARCH,
          {"user_id": (USER, "user id"), "vector": (USER, "ALS user factors (only with personalisation)"),
           "liked": (USER, "films rated ≥ 4"), "rated": (USER, "films rated"),
           "ratings": (USER, "the rating of each rated film"), "rating_count": (USER, "ratings"),
           "rating_mean": (USER, "mean rating"), "last_ts": (USER, "last rating time"),
           "personalisation": (USER, "consent to personalisation"), "analytics": (USER, "consent to analytics"),
           "basis": (NOT, "consent or research"), "consent": (USER, "older index versions only: always true"),
           "model_version": (NOT, "model that folded the vector")}),
    Store("index", "ratings", "activity log behind the dashboards (analytics)", "streaming job",
          "dashboards, Kibana, audit", "until erased or analytics consent is withdrawn",
          "consent (analytics) / research", _event()),
    Store("index", "dead_letters", "dead letters for the dashboards", "streaming job", "dashboards, Kibana",
          "until erased", "legitimate interest: data quality",
          {"reason": (NOT, "reason code"), "detail": (USER, "what was wrong"), "partition": (NOT, "source partition"),
           "offset": (NOT, "source offset"), "ts": (NOT, "receipt time"),
           "user_id": (USER, "the Kafka key of the event, when it is a user id")}),
    Store("index", "online_metrics", "online metrics per minute and model variant", "cinerec online",
          "cinerec canary, dashboards", "until deleted by the operator", "not personal (aggregates)",
          {"minute": (NOT, "start of the minute"), "variant": (NOT, "champion or challenger"),
           "lists": (NOT, "lists shown"), "impressions": (NOT, "films shown"), "clicks": (NOT, "clicks"),
           "conversions": (NOT, "clicked films rated ≥ 4"), "rejections": (NOT, "lists without a click"),
           "precision_sum": (NOT, "Σ precision against hidden tastes (simulated users)"),
           "regret_sum": (NOT, "Σ regret against hidden tastes")}),
    Store("index", "canary", "the canary's state (one document)", "cinerec canary", "API, cinerec canary",
          "overwritten by the next canary", "not personal",
          {"version": (NOT, "challenger model version"), "champion_version": (NOT, "champion at the start"),
           "fraction": (NOT, "share of users served"), "salt": (NOT, "hash salt of the assignment"),
           "status": (NOT, "running, promoted or aborted"), "started_ms": (NOT, "start"),
           "decided_ms": (NOT, "decision time"),
           "previous_decided_ms": (NOT, "decision time of the canary this one replaced (its online counts end there)"),
           "looks": (NOT, "decisions looked at"),
           "decision": (NOT, "the last decision and its numbers")}),
    Store("table", "accounts", "people's accounts", "web app", "web app, cinerec privacy", "until erased",
          SERVICE,
          {"id": (NOT, "account number"), "email": (PERSON, "e-mail address (sign-in)"),
           "password_hash": (PERSON, "scrypt hash"), "user_id": (USER, "recommender user id"),
           "created_ms": (USER, "sign-up time")}),
    Store("table", "consents", "each consent given or withdrawn, with the privacy text's version",
          "web app", "web app, cinerec privacy", "until erased", "legal obligation: proof of consent",
          {"id": (NOT, "row id"), "account_id": (USER, "whose"), "purpose": (NOT, "personalisation or analytics"),
           "granted": (USER, "given or withdrawn"), "version": (NOT, "privacy text version"),
           "ts": (USER, "when")}),
    Store("table", "web_ratings", "ratings given in the web app (the person's own record)", "web app",
          "web app, export", "until erased", SERVICE,
          {"id": (NOT, "row id"), "account_id": (USER, "whose"), "movie_id": (NOT, "film"),
           "rating": (USER, "stars"), "ts": (USER, "when"), "event_id": (NOT, "the Kafka event's id")}),
    Store("table", "served_lists", "recommendations shown to the person (newest 50)", "web app", "export",
          "newest 50 per account, until erased", SERVICE,
          {"id": (NOT, "row id"), "account_id": (USER, "whose"), "ts": (USER, "when shown"),
           "movie_ids": (USER, "the films shown, JSON"), "status": (NOT, "waiting or ready")}),
    Store("file", "var/features/<fingerprint>/", "cleaned ratings and features (Parquet)", "cinerec train/index",
          "training, indexing", "until the dataset changes; rebuilt without erased users",
          CONSENT_OR_RESEARCH, {"ratings.parquet": (USER, "user_id, movie_id, rating, ts"),
                                "users.parquet": (USER, "per-user counts and times"),
                                "movies.parquet": (NOT, "films and statistics"), "tags.parquet": (USER, "user tags"),
                                "genome.parquet": (NOT, "Tag Genome: movie_id, tag_id, relevance (ml-20m, ml-25m)"),
                                "genome_tags.parquet": (NOT, "Tag Genome: tag_id, tag")},
          {"ratings.parquet": "parquet", "users.parquet": "parquet", "movies.parquet": "parquet",
           "tags.parquet": "parquet", "genome.parquet": "parquet", "genome_tags.parquet": "parquet"}),
    Store("file", "var/streaming/checkpoint-v<layout>/", "the streaming job's offsets and keyed state (RocksDB)",
          "streaming job", "streaming job, cinerec index, privacy audit", "until erased (state entries removed)",
          CONSENT_OR_RESEARCH, {"state": (USER, "each user's current ratings; each film's ratings by user; "
                                                 "privacy choices; erased user ids")},
          {"state": "RocksDB"}),
    Store("file", "MLflow model artifacts", "trained models (factors.npz) and their metrics", "cinerec train",
          "streaming job, indexing, API", "until deleted from the registry; a champion trained on an erased "
          "user is flagged by cinerec privacy status", CONSENT_OR_RESEARCH,
          {"user_ids": (USER, "users the model was trained on"), "user_factors": (USER, "their vectors"),
           "item_ids": (NOT, "films"), "item_factors": (NOT, "film vectors"), "gram": (NOT, "YᵀY"),
           "neighbours": (NOT, "stored neighbour lists of item-item parts (neighbours.npz)")},
          {"user_ids": "int64[]", "user_factors": "float32[][]", "item_ids": "int64[]", "item_factors": "float32[][]",
           "gram": "float32[][]", "neighbours": "CSR arrays"}),
    Store("file", "var/logs/, job output", "service logs", "every process", "operators", "rotated by the operator",
          "legitimate interest: operations", {"lines": (NOT, "counts, timings, reasons; never e-mails, names "
                                                              "or secrets (a test checks)")}, {"lines": "text"}),
]


def mapped_types(index: str) -> dict[str, str]:
    path = MAPPINGS / f"{index}.json"
    return {name: spec.get("type", "object") for name, spec in
            json.loads(path.read_text())["mappings"]["properties"].items()} if path.is_file() else {}


def types(store: Store, tables: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each field's type: from the mapping or table when there is one, else as stated.
    ``tables``: {table: {column: type}} of the account database (``platform.accounts.table_types``)."""
    read = mapped_types(store.name) if store.kind == "index" else tables.get(store.name, {}) \
        if store.kind == "table" else {}
    return {**store.types, **read}


def markdown(tables: dict[str, dict[str, str]]) -> str:
    lines = ["# Data catalog", "",
             "Generated by `cinerec privacy catalog` from `cinerec/core/catalog.py`, the index mappings and the "
             "account tables; a test keeps it complete and current. Personal data: anything tied to one "
             "user id; people (ids from `web.first_user_id` up) also have an e-mail in `accounts`. See "
             "[Privacy](privacy.md).", ""]
    for store in STORES:
        typed = types(store, tables)
        lines += [f"## {store.kind} `{store.name}`", "", store.purpose + ".", "",
                  f"- written by: {store.writers}", f"- read by: {store.readers}",
                  f"- retention: {store.retention}", f"- lawful basis: {store.basis}", "",
                  "| field | type | personal data | holds |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {typed.get(name, '?')} | {personal} | {what} |"
                  for name, (personal, what) in store.fields.items()]
        lines.append("")
    return "\n".join(lines)

"""`cinerec bench served`: the quality of what the API serves against the same model offline.

    temporal holdout of a MovieLens directory: each user's last 20 % of ratings by time are the test
    offline  the model fit on the whole train part, scored on the test (``batch.evaluate.score_model``)
    same model offline  the base-fit model below, its users' side recomputed from the whole train
             part (``Recommender.refold``: the fold-in, the user's rated films): what the served
             figure would be if serving lost nothing
    served   the train part cut by time: the first ``1 − streamed`` (the base) ─▶ the same model fit,
             made servable (``batch.training.serving``) ─▶ MLflow champion ─▶ indices; the rest
             ─ replayed as rating events ─▶ Kafka ─▶ streaming job (state seeded with the base,
             fold-in, user documents) ─▶ GET /users/<id>/recommendations?k=… for every test user
             ─▶ nDCG@k against the same test part
So both have seen the same ratings of each user; the served figure covers the whole path (events,
state, fold-in, neighbour lists truncated to ``SERVED_NEIGHBOURS``, the API's blend) and pays for
what a stream does not redo: the item side (factors, lists) stays as fit on the base. It starts
its own Kafka and Elasticsearch under a data directory of its own (a fresh topic and state) and
refuses to run beside other services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np

from cinerec.batch import movielens
from cinerec.batch.evaluate import Holdout, score_model
from cinerec.batch.indexing import build_indices
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.batch.split import split
from cinerec.batch.training import SERVED_NEIGHBOURS, prepare, servable_artifact
from cinerec.core import metrics
from cinerec.core.settings import Settings, as_env
from cinerec.platform.elasticsearch import connect
from cinerec.platform.registry import CHAMPION, Registry
from cinerec.search.queries import USERS
from cinerec.simulator.producer import publish
from cinerec.simulator.replay import replay_messages, time_cut

from . import services as svc
from .processes import stop_child


def served_quality(settings: Settings, data: Path, *, model: str, params: dict | None = None, k: int = 10,
                   streamed: float = 0.2, wait_s: float = 900.0) -> dict:
    data_dir = Path(settings.services.data_dir).resolve() / "bench-served" / time.strftime("%Y%m%dT%H%M%S")
    settings = settings.replace(services__data_dir=str(data_dir))
    if any(svc.status(settings)[name]["healthy"] for name in ("kafka", "elasticsearch")):
        raise RuntimeError("cinerec bench served starts a Kafka and an Elasticsearch of its own (a fresh topic "
                           "and state): stop the running ones first (`cinerec services down`)")
    frames, _ = prepare(data, settings)
    holdout = Holdout.build(frames, "temporal")
    recommender = create(model, params)
    started = time.perf_counter()
    recommender.fit(holdout.train)
    fit_s = time.perf_counter() - started
    offline = score_model(recommender, holdout, k)
    offline.pop("curve")

    train_rows, _ = split(frames["ratings"], "temporal")
    base_rows, replayed = time_cut(train_rows, 1.0 - streamed)
    raw = movielens.load(data)
    base_dir = movielens.write_csv(replace(raw, ratings=base_rows), data_dir / "base")
    base_frames, report = prepare(base_dir, settings)
    train = holdout.train                                   # the base, on the same users and films
    served_model = create(model, params).fit(Interactions.build(base_rows, train.user_ids, train.item_ids,
                                                                train.items))
    artifact = servable_artifact(served_model, report["fingerprint"])      # vectors copied: refold keeps them
    children: dict[str, subprocess.Popen] = {}
    svc.up(settings)
    try:
        registry = Registry(settings)
        version = registry.register(artifact, data_path=str(base_dir), train_seconds=0.0)["version"]
        registry.client.set_registered_model_alias(registry.name, CHAMPION, version)    # the only model: no gate
        es = connect(settings.elasticsearch)
        build_indices(es, base_frames, artifact, version=version,
                      neighbours_kept=settings.elasticsearch.stored_neighbours)
        env = {**os.environ, **as_env(settings)}
        for role in ("stream", "serve"):
            children[role] = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", role], env=env,
                                              start_new_session=True)
        messages, _ = replay_messages(replayed)
        started = time.monotonic()
        sent = publish(settings.kafka, messages, topic=settings.kafka.ratings_topic)
        last_ts = replayed.groupby("user_id")["ts"].max().astype(int).to_dict()
        waiting = _await_users(es, last_ts, wait_s, children)
        applied_s = time.monotonic() - started
        base = f"http://{settings.api.host}:{settings.api.port}"
        ranked, latencies = {}, []
        for row in holdout.test_users:
            asked = time.perf_counter()
            body = _get_json(f"{base}/users/{int(train.user_ids[row])}/recommendations?k={k}", wait_s=60)
            latencies.append(time.perf_counter() - asked)
            ranked[int(row)] = [int(c) for c in train.item_index([r["movie_id"] for r in body["results"]]) if c >= 0]
        served = {"ndcg": metrics.ndcg_at_k(ranked, holdout.relevant, k),
                  "precision": metrics.precision_at_k(ranked, holdout.relevant, k),
                  "recall": metrics.recall_at_k(ranked, holdout.relevant, k),
                  "map": metrics.map_at_k(ranked, holdout.relevant, k), "users": len(ranked)}
    finally:
        for child in reversed(list(children.values())):
            stop_child(child)
        svc.down(settings)
    same = score_model(served_model.refold(train), holdout, k)        # offline, what the stream has seen
    same.pop("curve")
    return {"benchmark": "served", "data": str(data), "model": model, "params": recommender.params, "k": k,
            "protocol": "temporal", "parts": artifact.parts, "stored_neighbours": SERVED_NEIGHBOURS,
            "base_ratings": len(base_rows), "replayed_ratings": len(replayed), "events_sent": sent["valid"],
            "users_not_applied": waiting,
            "seconds_until_applied": round(applied_s, 1),
            "request_ms_p50": round(1000 * float(np.median(latencies)), 2),
            "offline": offline, "offline_same_model": same, "served": served, "fit_seconds": round(fit_s, 1),
            "served_over_offline": round(served["ndcg"] / offline["ndcg"], 4) if offline["ndcg"] else None,
            "served_over_same_model": round(served["ndcg"] / same["ndcg"], 4) if same["ndcg"] else None}


def _await_users(es, last_ts: dict[int, int], wait_s: float, children: dict) -> int:
    """Waits until every user's document shows their last replayed rating; returns how many do not."""
    deadline, pending = time.monotonic() + wait_s, dict(last_ts)
    while pending and time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                raise RuntimeError(f"cinerec {name} stopped (exit {child.returncode}) during the replay")
        ids = list(pending)
        for start in range(0, len(ids), 1000):
            docs = es.mget(index=USERS, ids=[str(u) for u in ids[start:start + 1000]], source=["last_ts"])["docs"]
            for doc in docs:
                if doc.get("found") and (doc["_source"].get("last_ts") or 0) >= pending[int(doc["_id"])]:
                    pending.pop(int(doc["_id"]))
        if pending:
            time.sleep(2.0)
    return len(pending)


def _get_json(url: str, wait_s: float) -> dict:
    """GET ``url`` as JSON, retried while the API is starting."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)

"""`cinerec index`: the champion model and the catalog into versioned Elasticsearch indices.

    clean frames + champion artifact ─▶ films-v<version>, users-v<version> ─▶ alias swap ─▶ prune
The ``ratings`` index (one document per accepted event, written by streaming) is created once.
"""

from __future__ import annotations

from elasticsearch import Elasticsearch

from .artifact import ModelArtifact
from search import documents, indices


def build_indices(es: Elasticsearch, frames: dict, artifact: ModelArtifact, *, version: int | str,
                  keep: int = 3) -> dict:
    model_version = str(version)
    rank = artifact.item_factors.shape[1]
    report = {}
    films = indices.create_index(es, "films", version, dims=rank)
    report["films"] = indices.bulk_write(es, films, documents.film_documents(
        frames["movies"], frames["tags"], frames["ratings"], artifact.item_ids, artifact.item_factors,
        model_version))
    users = indices.create_index(es, "users", version, dims=rank)
    report["users"] = indices.bulk_write(es, users, documents.user_documents(
        frames["ratings"], artifact.user_ids, artifact.user_factors, model_version))
    for alias, name in (("films", films), ("users", users)):
        es.indices.refresh(index=name)
        indices.swap_alias(es, alias, name)
        report[alias]["pruned"] = indices.prune(es, alias, keep)
    if not indices.current_indices(es, "ratings"):
        indices.swap_alias(es, "ratings", indices.create_index(es, "ratings", 1))
    report["aliases"] = {a: indices.current_indices(es, a) for a in ("films", "users", "ratings")}
    return report

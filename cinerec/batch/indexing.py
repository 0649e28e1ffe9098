"""`cinerec index`: the champion model and the catalog into versioned Elasticsearch indices.

    clean frames + champion artifact ─▶ per-film lists (also watched, similar; core.neighbours)
        ─▶ films-v<version> (catalogue, vectors), film_stats-v<version> (what the stream rewrites),
           film_lists-v<version>, users-v<version> ─▶ alias swap ─▶ prune
The ``ratings`` index (one document per accepted event, written by streaming) is created once.
When the streaming job has run, ``with_streamed`` adds the ratings it took to the training ratings
first, so a rebuild keeps every streamed rating in the film statistics and user documents, and
the film statistics keep the job's trending (``film_fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from elasticsearch import Elasticsearch

from cinerec.core import neighbours
from cinerec.core.artifact import ModelArtifact
from cinerec.core.dataset import latest_ratings
from cinerec.core.events import LIKED
from cinerec.core.foldin import FoldIn, solve_user
from cinerec.search import documents, indices


def with_streamed(frames: dict, artifact: ModelArtifact, streamed: pd.DataFrame,
                  prior: tuple[float, float]) -> tuple[dict, ModelArtifact]:
    """Training frames and artifact plus the ratings streaming took since (user_id, movie_id,
    rating, ts; a streamed rating replaces the training rating of the same user and film).

    Film statistics are recomputed from the merged ratings with the Bayesian ``prior`` (C, m);
    users with streamed ratings get vectors re-solved against the artifact's item factors."""
    if streamed.empty:
        return frames, artifact
    ratings = latest_ratings(pd.concat([frames["ratings"], streamed[frames["ratings"].columns]], ignore_index=True))
    stats = ratings.groupby("movie_id")["rating"].agg(["size", "sum"])
    movies = frames["movies"].copy()
    count = movies["movie_id"].map(stats["size"]).fillna(0).astype(int)
    total = movies["movie_id"].map(stats["sum"]).fillna(0.0)
    movies["rating_count"] = count
    movies["rating_mean"] = (total / count).where(count > 0)
    movies["bayesian_avg"] = documents.bayesian_average(total, count, *prior).where(count > 0)
    fold = FoldIn(artifact.item_factors, *artifact.fold_params)
    item_index = {int(m): i for i, m in enumerate(artifact.item_ids)}
    vectors = dict(zip(map(int, artifact.user_ids), artifact.user_factors))
    for user, group in ratings[ratings["user_id"].isin(streamed["user_id"])].groupby("user_id"):
        vectors[int(user)] = solve_user(fold, item_index, zip(group["movie_id"].astype(int), group["rating"],
                                                              group["ts"]))
    user_ids = np.array(sorted(vectors))
    users = replace(artifact, user_ids=user_ids, user_factors=np.stack([vectors[u] for u in user_ids]))
    return {**frames, "ratings": ratings, "movies": movies}, users


def film_neighbours(movies: pd.DataFrame, ratings: pd.DataFrame, artifact: ModelArtifact, *,
                    size: int) -> dict[int, dict[str, list[neighbours.Neighbour]]]:
    """Every film's stored lists: co-liked films scored for significance (the like matrix of all
    users, ``core.neighbours.co_like_lists``) and the films nearest its item vector."""
    movie_ids = np.asarray(sorted(set(map(int, movies["movie_id"])) | set(map(int, artifact.item_ids))))
    column = {m: i for i, m in enumerate(movie_ids)}
    users = {u: i for i, u in enumerate(sorted(map(int, ratings["user_id"].unique())))}
    liked = ratings[(ratings["rating"] >= LIKED) & ratings["movie_id"].isin(column)]
    likes = sp.csr_matrix((np.ones(len(liked)), (liked["user_id"].map(users).to_numpy(),
                                                  liked["movie_id"].map(column).to_numpy())),
                          shape=(len(users), len(movie_ids)))
    vectors = dict(zip(map(int, artifact.item_ids), artifact.item_factors))
    together = neighbours.co_like_lists(likes, movie_ids, vectors, size=size)
    nearest = neighbours.vector_neighbours(np.asarray(artifact.item_ids), artifact.item_factors, size=size)
    return {m: {"also_watched": together.get(m, []), "similar": nearest.get(m, [])} for m in movie_ids}


SERVED = ("films", "film_stats", "film_lists", "users")     # the aliases the API reads, one index version each


def serve_version(es: Elasticsearch, version: int | str, keep: int = 3) -> dict[str, list[str]]:
    """Points the served aliases at the indices of ``version`` (atomically per alias) and prunes
    old versions; returns the pruned indices per alias."""
    pruned = {}
    for alias in SERVED:
        indices.swap_alias(es, alias, indices.versioned_name(alias, version))
        pruned[alias] = indices.prune(es, alias, keep)
    return pruned


def build_indices(es: Elasticsearch, frames: dict, artifact: ModelArtifact, *, version: int | str,
                  keep: int = 3, film_fields: dict[int, dict] | None = None, neighbours_kept: int = 30,
                  privacy: Callable[[int], dict] | None = None, swap: bool = True) -> dict:
    """``film_fields``: extra fields of some film statistics (the streaming job's trending);
    ``neighbours_kept``: length of each film's stored lists; ``privacy(user id)``: the user's
    choices (``core.privacy.PrivacyBook.document_fields``; research data by default);
    ``swap``: move the aliases to the new indices (a canary's challenger is built without)."""
    model_version = str(version)
    extra = film_fields or {}
    rank = artifact.item_factors.shape[1]
    report = {}
    films = indices.create_index(es, "films", version, dims=rank,
                                 meta={"model": artifact.model, "parts": artifact.parts})
    report["films"] = indices.bulk_write(es, films, documents.film_documents(
        frames["movies"], frames["tags"], artifact.item_ids, artifact.item_factors, model_version,
        artifact.neighbours))
    film_stats = indices.create_index(es, "film_stats", version)
    film_docs = {int(i): {**doc, **extra.get(int(i), {})}
                 for i, doc in documents.film_statistics(frames["movies"], frames["ratings"])}
    report["film_stats"] = indices.bulk_write(es, film_stats, ((str(m), doc) for m, doc in film_docs.items()))
    lists = film_neighbours(frames["movies"], frames["ratings"], artifact, size=neighbours_kept)
    film_lists = indices.create_index(es, "film_lists", version)
    report["film_lists"] = indices.bulk_write(es, film_lists, (
        (str(m), {"movie_id": m, "title": doc["title"], **documents.stored_lists(lists.get(m, {}), film_docs)})
        for m, doc in film_docs.items()))
    users = indices.create_index(es, "users", version, dims=rank)
    report["users"] = indices.bulk_write(es, users, documents.user_documents(
        frames["ratings"], artifact.user_ids, artifact.user_factors, model_version, privacy))
    es.indices.refresh(index=[films, film_stats, film_lists, users])
    if swap:
        for alias, pruned in serve_version(es, version, keep).items():
            report[alias]["pruned"] = pruned
    indices.ensure_event_indices(es)
    report["aliases"] = {a: indices.current_indices(es, a) for a in (*SERVED, *indices.EVENT_INDICES)}
    return report

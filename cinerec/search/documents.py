"""Elasticsearch documents of films and users, built from plain frames and arrays.

Ids are the movie and user ids, so rebuilding writes the same documents (idempotent).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import numpy as np
import pandas as pd

from cinerec.core.events import LIKED

# What a list of films shows of each film. The ``film_lists`` documents carry these fields for every
# film they name, so a title's "also watched" is one GET (no second request for the films).
SUMMARY_FIELDS = ("movie_id", "title", "year", "genres", "rating_count", "bayesian_avg", "like_count")


def summary(film: dict) -> dict:
    return {f: film.get(f) for f in SUMMARY_FIELDS}


def stored_lists(lists: dict[str, list], films: dict[int, dict]) -> dict[str, list[dict]]:
    """``{"also_watched": [...], "similar": [...]}`` of ``core.neighbours.Neighbour`` as stored in a
    ``film_lists`` document (kept apart from ``films``, whose statistics the stream rewrites per
    batch): each entry the film's summary plus score and co-like count. ``films``: the documents
    (or summaries) of every film a list names."""
    return {name: [{**summary(films[n.movie_id]), **n.as_dict()} for n in entries if n.movie_id in films]
            for name, entries in lists.items()}


def searchable_title(text: str) -> str:
    """The title with accents folded ('Misérables' -> 'Miserables'): Elasticsearch's own folding
    filter lives in the analysis-common module, which the embedded distribution lacks, so the
    ``title_search`` field and every title query are folded here, the one owner of the rule."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def bayesian_average(total, count, prior_count: float, prior_mean: float):
    """(C·m + Σ ratings) / (C + n): a film's mean pulled towards the global mean m by C ratings.
    Works on scalars and on pandas/numpy columns alike."""
    return (prior_count * prior_mean + total) / (prior_count + count)


def film_documents(movies: pd.DataFrame, tags: pd.DataFrame, item_ids: np.ndarray, item_factors: np.ndarray,
                   model_version: str, neighbours: dict | None = None) -> Iterator[tuple[str, dict]]:
    """The ``films`` document of every catalog film: what a model's indexing writes and nothing the
    stream changes (catalogue, searchable title, tags, item vector, and the stored lists of each
    item-item part of the model: ``neighbours`` part -> items x items CSR in ``item_ids`` order);
    films the model never saw get neither."""
    vectors = dict(zip(map(int, item_ids), item_factors))
    lists = {int(m): {part: _neighbour_list(matrix, row, item_ids) for part, matrix in (neighbours or {}).items()}
             for row, m in enumerate(item_ids)}
    tag_text = tags.dropna(subset=["tag"]).groupby("movie_id")["tag"].agg(lambda t: " ".join(map(str, t)))
    for row in movies.itertuples(index=False):
        movie = int(row.movie_id)
        doc = {"movie_id": movie, "title": row.title, "title_search": searchable_title(row.title),
               "year": _int_or_none(row.year), "genres": [str(g) for g in row.genres],
               "tags": tag_text.get(movie, ""), "model_version": model_version}
        if movie in vectors:
            doc["vector"] = [float(v) for v in vectors[movie]]
        if lists.get(movie):
            doc["neighbours"] = lists[movie]
        yield str(movie), doc


def _neighbour_list(matrix, row: int, item_ids: np.ndarray) -> dict:
    """Row ``row`` of a CSR neighbour matrix as ``{"ids": [movie ids], "w": [weights]}``."""
    lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
    return {"ids": [int(m) for m in item_ids[matrix.indices[lo:hi]]], "w": [float(w) for w in matrix.data[lo:hi]]}


def film_statistics(movies: pd.DataFrame, ratings: pd.DataFrame) -> Iterator[tuple[str, dict]]:
    """The ``film_stats`` document of every catalog film: the figures the stream rewrites every batch
    (count, mean, Bayesian average, likes, trending), kept apart from the vector and analysed text
    of ``films`` so that rewriting them re-indexes neither; with the fields a list of films shows
    and filters on (title, year, genres), so popular and trending films are one search here.
    ``movies`` carries the batch features (rating_count, rating_mean, bayesian_avg)."""
    likes = ratings[ratings["rating"] >= LIKED].groupby("movie_id").size()
    for row in movies.itertuples(index=False):
        movie = int(row.movie_id)
        yield str(movie), {"movie_id": movie, "title": row.title, "year": _int_or_none(row.year),
                           "genres": [str(g) for g in row.genres], "rating_count": int(row.rating_count),
                           "rating_mean": _float_or_none(row.rating_mean),
                           "bayesian_avg": _float_or_none(row.bayesian_avg),
                           "like_count": int(likes.get(movie, 0)), "trending": 0.0}


def _int_or_none(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _float_or_none(value) -> float | None:
    return None if pd.isna(value) else float(value)


RESEARCH = {"personalisation": True, "analytics": True, "basis": "research"}


def user_document(user_id: int, ratings: dict[int, float], last_ts: int | None, vector, model_version: str,
                  privacy: dict | None = None) -> dict:
    """The whole ``users`` document of one user from their current ratings (movie -> rating):
    vector, liked and rated films (``ratings``: the rating of each ``rated`` film, in its order),
    activity, privacy choices (``core.privacy``; research data when not given). The vector only
    with consent to personalisation. No names or e-mails. The batch index and the streaming job
    both write it whole (``index``, not a partial update)."""
    privacy = privacy or RESEARCH
    values = list(ratings.values())
    rated = sorted(ratings, key=str)
    doc = {"user_id": int(user_id), "liked": sorted(str(m) for m, r in ratings.items() if r >= LIKED),
           "rated": [str(m) for m in rated], "ratings": [float(ratings[m]) for m in rated],
           "rating_count": len(values),
           "rating_mean": float(np.mean(values)) if values else None, "last_ts": last_ts,
           "personalisation": bool(privacy["personalisation"]), "analytics": bool(privacy["analytics"]),
           "basis": privacy["basis"], "model_version": model_version}
    if vector is not None and privacy["personalisation"]:
        doc["vector"] = [float(v) for v in vector]
    return doc


def user_documents(ratings: pd.DataFrame, user_ids: np.ndarray, user_factors: np.ndarray, model_version: str,
                   privacy=None) -> Iterator[tuple[str, dict]]:
    """One document per user with ratings (``user_document``); ``privacy(user id)``: their choices."""
    vectors = dict(zip(map(int, user_ids), user_factors))
    for user, group in ratings.groupby("user_id"):
        user = int(user)
        yield str(user), user_document(user, dict(zip(group["movie_id"].astype(int), group["rating"].astype(float))),
                                       int(group["ts"].max()), vectors.get(user), model_version,
                                       privacy(user) if privacy else None)

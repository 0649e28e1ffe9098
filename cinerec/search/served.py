"""The served model inside each API process: how one ``films`` version ranks a user's films.

The ``films`` index of a version holds, besides the catalogue, each film's vector and the stored
neighbour lists of each item-item part of the model (``search.documents.film_documents``); its
mapping's ``_meta`` names the parts (``batch.artifact``). Loaded once per version and process, it
scores a user from their document alone (one real-time GET): every part over every film of the
model, blended with the offline model's per-user standardisation (``core.blend``), so the API's
top-k is the offline model's top-k with its neighbour lists truncated to their stored length.
A model ranked by its factors alone is answered by a kNN in Elasticsearch instead (its ranking
needs no other part); its vectors still give each result its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from elasticsearch import Elasticsearch, helpers

from cinerec.core.blend import factor_only, standardised, user_inputs
from cinerec.core.events import LIKED

from . import indices

FACTORS_ALONE = [{"model": "als", "kind": "factor", "weight": 1.0}]   # an index built before parts existed


@dataclass
class ServedModel:
    version: str
    parts: list[dict]
    movie_ids: np.ndarray                           # the model's films, in row order
    vectors: np.ndarray                             # Y: one row per film
    lists: dict[str, sp.csr_matrix] = field(default_factory=dict)   # item-item part -> rows x rows
    genres: list[frozenset] = field(default_factory=list)
    years: np.ndarray | None = None                 # each film's year, NaN when unknown (from_documents sets it)
    titles: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.row = {int(m): r for r, m in enumerate(self.movie_ids)}
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)   # half the memory read per request
        self.norms = np.maximum(np.linalg.norm(self.vectors, axis=1), 1e-12)

    @classmethod
    def from_documents(cls, version: str, parts: list[dict], docs: list[dict]) -> ServedModel:
        """From the ``films`` documents of one version (those with a vector are the model's films)."""
        docs = [d for d in docs if "vector" in d]
        movie_ids = np.array([int(d["movie_id"]) for d in docs], dtype=np.int64)
        row = {int(m): r for r, m in enumerate(movie_ids)}
        lists = {}
        for part in (p["model"] for p in parts if p["kind"] == "item"):
            rows, cols, weights = [], [], []
            for r, doc in enumerate(docs):
                stored = doc.get("neighbours", {}).get(part, {"ids": [], "w": []})
                known = [(row[m], w) for m, w in zip(stored["ids"], stored["w"]) if m in row]
                rows += [r] * len(known)
                cols += [c for c, _ in known]
                weights += [w for _, w in known]
            lists[part] = sp.csr_matrix((weights, (rows, cols)), shape=(len(docs), len(docs)))
        vectors = np.array([d["vector"] for d in docs], dtype=np.float32).reshape(len(docs), -1)
        years = np.array([d.get("year") if d.get("year") is not None else np.nan for d in docs], dtype=np.float64)
        return cls(version, parts, movie_ids, vectors, lists, [frozenset(d.get("genres") or []) for d in docs],
                   years, [d.get("title", str(d["movie_id"])) for d in docs])

    @classmethod
    def load(cls, es: Elasticsearch, version: str, fields: list[str]) -> tuple[ServedModel, list[dict]]:
        """(the model of the ``films`` index ``version``, every document's ``fields``): one scan."""
        parts = indices.index_meta(es, version).get("parts") or FACTORS_ALONE
        docs = [hit["_source"] for hit in helpers.scan(
            es, index=version, _source=sorted({*fields, "movie_id", "title", "year", "genres", "vector", "neighbours"}),
            size=1000)]
        return cls.from_documents(version, parts, docs), docs

    @property
    def factor_only(self) -> bool:
        return factor_only(self.parts)

    def rows(self, movie_ids) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the given films the model knows, positions of those films in the input)."""
        found = [(self.row[int(m)], i) for i, m in enumerate(movie_ids) if int(m) in self.row]
        return (np.array([r for r, _ in found], dtype=np.int64), np.array([i for _, i in found], dtype=np.int64))

    def part_scores(self, part: dict, user: dict) -> np.ndarray:
        """One part's score of every film for ``user`` (a ``users`` document with vector, rated, ratings)."""
        if part["kind"] == "factor":
            return (self.vectors @ np.asarray(user["vector"], dtype=np.float32)).astype(np.float64)
        rated = user.get("rated", [])
        ratings = user.get("ratings") or [1.0] * len(rated)
        inputs = user_inputs(np.asarray(ratings, dtype=np.float64), part["input"])
        rows, at = self.rows(rated)
        return np.asarray(self.lists[part["model"]][rows].T @ inputs[at]).ravel()

    def scores(self, user: dict) -> np.ndarray:
        """The blend of every part (``core.blend``) over the model's films."""
        return sum(part["weight"] * standardised(self.part_scores(part, user)) for part in self.parts)

    def recommend(self, user: dict, size: int, *, genres: list[str] | None = None,
                  years=(None, None)) -> list[tuple[int, float]]:
        """(movie id, score) of the ``size`` best films the user has not rated, within the filters."""
        scores = self.scores(user)
        rows, _ = self.rows(user.get("rated", []))
        scores[rows] = -np.inf
        if genres:
            wanted = set(genres)
            scores[[r for r, g in enumerate(self.genres) if not g & wanted]] = -np.inf
        low, high = years
        if low is not None or high is not None:
            assert self.years is not None, "from_documents gives every model its films' years"
            if low is not None:
                scores[~(self.years >= low)] = -np.inf
            if high is not None:
                scores[~(self.years <= high)] = -np.inf
        size = min(size, int(np.isfinite(scores).sum()))
        if size <= 0:
            return []
        top = np.argpartition(-scores, size - 1)[:size]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.movie_ids[r]), float(scores[r])) for r in top]

    def reasons(self, user: dict, movie_ids: list[int]) -> dict[int, str]:
        """For each film, the user's liked film nearest to it under this model: the one whose stored
        lists give it the most weight (item-item parts, by part weight), else the one whose vector
        has the highest cosine with it. Liked: rated at least ``LIKED``; a user with no
        such rating: their best-rated films."""
        rated = user.get("rated", [])
        ratings = np.asarray(user.get("ratings") or [LIKED] * len(rated), dtype=np.float64)
        if not len(rated):
            return {}
        liked_at = np.flatnonzero(ratings >= min(LIKED, ratings.max()))
        liked, _ = self.rows([rated[i] for i in liked_at])
        targets, at = self.rows(movie_ids)
        if not len(liked) or not len(targets):
            return {}
        links = np.zeros((len(liked), len(targets)))
        for part in self.parts:
            if part["kind"] == "item":
                links += part["weight"] * self.lists[part["model"]][liked][:, targets].toarray()
        cosines = (self.vectors[liked] @ self.vectors[targets].T) / np.outer(self.norms[liked], self.norms[targets])
        out = {}
        for column, position in enumerate(at):
            by_list = links[:, column]
            nearest = by_list.argmax() if by_list.max() > 0 else cosines[:, column].argmax()
            out[int(movie_ids[position])] = f"because you liked {self.titles[liked[nearest]]}"
        return out

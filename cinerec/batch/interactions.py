"""Ratings as a sparse user x item matrix with id maps: what every recommender trains on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class Interactions:
    user_ids: np.ndarray          # row i of ``matrix`` is user user_ids[i]
    item_ids: np.ndarray          # column j is movie item_ids[j]
    matrix: sp.csr_matrix         # ratings (0 = not rated), users x items
    items: pd.DataFrame           # item metadata aligned with item_ids: title, year, genres, tags
    times: sp.csr_matrix | None = None   # rating times (ms), same sparsity as ``matrix``; None if unknown

    @classmethod
    def build(cls, ratings: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray,
              items: pd.DataFrame | None = None) -> Interactions:
        """``ratings`` restricted to the given id universes (rows of other ids are ignored)."""
        user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
        rows = pd.Index(user_ids).get_indexer(ratings["user_id"])
        cols = pd.Index(item_ids).get_indexer(ratings["movie_id"])
        keep = (rows >= 0) & (cols >= 0)
        shape, at = (len(user_ids), len(item_ids)), (rows[keep], cols[keep])
        matrix = sp.csr_matrix((ratings["rating"].to_numpy(np.float32)[keep], at), shape=shape)
        times = (sp.csr_matrix((ratings["ts"].to_numpy(np.float64)[keep], at), shape=shape)
                 if "ts" in ratings else None)
        meta = items if items is not None else pd.DataFrame(index=item_ids)
        return cls(user_ids, item_ids, matrix, meta, times)

    @property
    def binary(self) -> sp.csr_matrix:
        out = self.matrix.copy()
        out.data[:] = 1.0
        return out

    def histories(self) -> list[np.ndarray]:
        """Each user's item columns in the order they were rated (ties by column)."""
        if self.times is None:
            raise ValueError("these interactions have no rating times (a 'ts' column is needed)")
        t = self.times
        out = []
        for row in range(t.shape[0]):
            lo, hi = t.indptr[row], t.indptr[row + 1]
            cols = t.indices[lo:hi]
            out.append(cols[np.lexsort((cols, t.data[lo:hi]))])
        return out

    def user_index(self, user_ids) -> np.ndarray:
        return pd.Index(self.user_ids).get_indexer(np.asarray(user_ids))

    def item_index(self, item_ids) -> np.ndarray:
        return pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))


def item_metadata(movies: pd.DataFrame, tags: pd.DataFrame, item_ids: np.ndarray,
                  genome: pd.DataFrame | None = None) -> pd.DataFrame:
    """Title, year, genres and the joined tag text of each item, in ``item_ids`` order; with a Tag
    Genome frame (movie_id, tag_id, relevance) also ``genome``: each item's relevance vector in tag
    id order (float64, one entry per tag of the frame, 0 where a film lacks a tag), or None for an
    item the genome does not cover. No ``genome`` column without a genome (or an empty one)."""
    text = tags.dropna(subset=["tag"]).groupby("movie_id")["tag"].agg(lambda t: " ".join(map(str, t)))
    meta = movies.drop_duplicates("movie_id").set_index("movie_id").reindex(item_ids)
    meta["genres"] = [g if isinstance(g, list | np.ndarray) else [] for g in meta["genres"]]
    meta["tags"] = text.reindex(item_ids).fillna("").to_numpy()
    if genome is not None and len(genome):
        wide = (genome.dropna().drop_duplicates(["movie_id", "tag_id"], keep="last")
                .pivot(index="movie_id", columns="tag_id", values="relevance").sort_index(axis=1))
        vectors = dict(zip(wide.index.astype("int64"), wide.fillna(0.0).to_numpy(np.float64)))
        meta["genome"] = [vectors.get(int(i)) for i in item_ids]
    return meta


def frames_item_metadata(frames: dict[str, pd.DataFrame], item_ids: np.ndarray) -> pd.DataFrame:
    """``item_metadata`` of the clean frames (``batch.preprocess.read_clean``): movies, tags and,
    where present, the Tag Genome."""
    return item_metadata(frames["movies"], frames.get("tags", pd.DataFrame(columns=["movie_id", "tag"])),
                         item_ids, frames.get("genome"))

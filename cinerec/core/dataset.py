"""One in-memory shape for every ratings dataset (MovieLens layouts, the synthetic world).

Frames and their columns:
- ``movies``:  movie_id (int), title (str, year removed), year (nullable int), genres (list of str)
- ``ratings``: user_id (int), movie_id (int), rating (float), ts (int, epoch ms)
- ``tags``:    user_id (int), movie_id (int), tag (str), ts (int, epoch ms)
- ``genome``:  movie_id (int), tag_id (int), relevance (float, 0-1): the Tag Genome's relevance of
  each tag to each film (ml-20m, ml-25m: genome-scores.csv); empty where the release has none
- ``genome_tags``: tag_id (int), tag (str): the Tag Genome's tags (genome-tags.csv)

Rows are kept as read: cleaning is the batch job's work, and integrity checks need the defects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .events import LATEST_ORDER

MOVIE_COLUMNS = ("movie_id", "title", "year", "genres")
RATING_COLUMNS = ("user_id", "movie_id", "rating", "ts")
TAG_COLUMNS = ("user_id", "movie_id", "tag", "ts")
GENOME_COLUMNS = ("movie_id", "tag_id", "relevance")
GENOME_TAG_COLUMNS = ("tag_id", "tag")


@dataclass
class Dataset:
    layout: str
    movies: pd.DataFrame
    ratings: pd.DataFrame
    tags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(TAG_COLUMNS)))
    files: list[Path] = field(default_factory=list)
    genome: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(GENOME_COLUMNS)))
    genome_tags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(GENOME_TAG_COLUMNS)))

    def summary(self) -> dict:
        ratings = self.ratings
        out = {"layout": self.layout, "movies": len(self.movies), "ratings": len(ratings),
               "users": int(ratings["user_id"].nunique()), "tags": len(self.tags)}
        if len(self.genome) or len(self.genome_tags):
            out |= {"genome_scores": len(self.genome), "genome_tags": len(self.genome_tags)}
        return out | {"fingerprint": fingerprint(self.files)}


def latest_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Each user's latest rating of each film (``core.events.supersedes``' rule, for pandas frames)."""
    return (ratings.sort_values(list(LATEST_ORDER), kind="stable").drop_duplicates(["user_id", "movie_id"], keep="last")
            .reset_index(drop=True))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(files: list[Path]) -> str:
    """Hash of the input files' names and contents: identifies the data a model was trained on."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(f"{path.name}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()[:16]

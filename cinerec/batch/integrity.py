"""Integrity report of a MovieLens directory: what `cinerec data check` prints.

Errors make the data unfit for training as it stands (the batch cleaner would have to drop
rows); warnings are normal in published releases (films without a year or genres).

The Tag Genome (ml-20m, ml-25m) is checked where it is present: missing values, relevance outside
[0, 1], tag ids not in genome-tags.csv, rows for films not in the catalog, duplicate (film, tag)
pairs, and catalog films whose relevance vector lacks some of the tags (counted in films).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cinerec.core.dataset import Dataset, sha256_file
from cinerec.core.events import is_valid_rating

from .movielens import detect_layout, load

EXAMPLES = 5


def check(path: Path) -> dict:
    """The report for ``path``: files with digests, counts, problems and time span."""
    layout, directory = detect_layout(Path(path))
    dataset = load(directory)
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in dataset.files}
    problems = _digest_problems(directory, files) + _problems(dataset)
    return {
        "path": str(directory),
        "layout": layout,
        "files": files,
        "counts": {"movies": len(dataset.movies), "ratings": len(dataset.ratings),
                   "users": int(dataset.ratings["user_id"].nunique()), "tags": len(dataset.tags),
                   **_genome_counts(dataset)},
        "time_span": _time_span(dataset.ratings["ts"]),
        "problems": problems,
        "errors": sum(1 for p in problems if p["severity"] == "error"),
        "warnings": sum(1 for p in problems if p["severity"] == "warning"),
    }


def _problems(data: Dataset) -> list[dict]:
    ratings, movies = data.ratings, data.movies
    complete = ratings.dropna()
    valid_rating = complete["rating"].map(lambda r: is_valid_rating(float(r)))
    known = complete["movie_id"].isin(movies["movie_id"].dropna())
    found = [
        ("ratings_missing_values", "error", ratings[ratings.isna().any(axis=1)]),
        ("ratings_out_of_range", "error", complete[~valid_rating]),
        ("duplicate_user_movie_pairs", "error",
         complete[complete.duplicated(["user_id", "movie_id"], keep=False)]),
        ("ratings_for_unknown_movies", "error", complete[~known]),
        ("movies_missing_values", "error", movies[movies["movie_id"].isna() | (movies["title"] == "")]),
        ("duplicate_movie_ids", "error", movies[movies["movie_id"].duplicated(keep=False)
                                                & movies["movie_id"].notna()]),
        ("tags_missing_values", "error", data.tags[data.tags.isna().any(axis=1)]),
        ("movies_without_year", "warning", movies[movies["year"].isna()]),
        ("movies_without_genres", "warning", movies[movies["genres"].map(len) == 0]),
        *_genome_problems(data),
    ]
    return [{"check": name, "severity": severity, "count": len(rows),
             "examples": _examples(rows)}
            for name, severity, rows in found if len(rows)]


def _genome_counts(data: Dataset) -> dict:
    if data.genome.empty and data.genome_tags.empty:
        return {}
    return {"genome_scores": len(data.genome), "genome_tags": len(data.genome_tags),
            "genome_movies": int(data.genome["movie_id"].nunique())}


def _genome_problems(data: Dataset) -> list[tuple[str, str, pd.DataFrame]]:
    genome, tags = data.genome, data.genome_tags
    if genome.empty and tags.empty:
        return []
    complete = genome.dropna()
    tag_ids = tags["tag_id"].dropna().unique()
    known_tag = complete["tag_id"].isin(tag_ids)
    known_movie = complete["movie_id"].isin(data.movies["movie_id"].dropna())
    # a catalog film's vector must hold every tag of genome-tags.csv (its number of known tags)
    present = (genome.dropna(subset=["movie_id", "tag_id"])
               .loc[lambda g: g["tag_id"].isin(tag_ids) & g["movie_id"].isin(data.movies["movie_id"].dropna())]
               .groupby("movie_id")["tag_id"].nunique())
    incomplete = present[present < len(tag_ids)]
    return [
        ("genome_missing_values", "error", genome[genome.isna().any(axis=1)]),
        ("genome_relevance_out_of_range", "error", complete[~complete["relevance"].between(0.0, 1.0)]),
        ("genome_unknown_tags", "error", complete[~known_tag]),
        ("genome_for_unknown_movies", "error", complete[~known_movie]),
        ("duplicate_genome_pairs", "error", complete[complete.duplicated(["movie_id", "tag_id"], keep=False)]),
        ("genome_incomplete_vectors", "error",
         pd.DataFrame({"movie_id": incomplete.index, "tags": incomplete.to_numpy(), "expected": len(tag_ids)})),
        ("genome_tags_missing_values", "error", tags[tags.isna().any(axis=1)]),
        ("duplicate_genome_tag_ids", "error", tags[tags["tag_id"].duplicated(keep=False) & tags["tag_id"].notna()]),
    ]


def _digest_problems(directory: Path, files: dict) -> list[dict]:
    """Compare with a SHA256SUMS file shipped beside the data, where there is one."""
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return []
    pairs = (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
    expected = {name: digest for digest, name in pairs}
    expected = {name.strip().lstrip("*"): digest for name, digest in expected.items()}
    bad = [name for name, info in files.items()
           if name in expected and expected[name] != info["sha256"]]
    if not bad:
        return []
    return [{"check": "sha256_mismatch", "severity": "error", "count": len(bad), "examples": bad}]


def _examples(rows: pd.DataFrame) -> list[dict]:
    head = rows.head(EXAMPLES).astype(object).where(rows.head(EXAMPLES).notna(), None)
    return [{k: (list(v) if isinstance(v, list) else v) for k, v in row.items()}
            for row in head.to_dict("records")]


def _time_span(ts: pd.Series) -> dict:
    ts = ts.dropna()
    if ts.empty:
        return {"first": None, "last": None, "days": 0}
    first, last = int(ts.min()), int(ts.max())
    iso = lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()  # noqa: E731
    return {"first": iso(first), "last": iso(last), "days": round((last - first) / 86_400_000, 1)}

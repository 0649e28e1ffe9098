"""Small generated MovieLens directories in every layout, from one logical dataset.

``write(layout, directory, defects=True)`` writes the same films and ratings in the
layout's own format. With ``defects`` it adds exactly one of each integrity problem:
a missing rating, a duplicate user-movie pair, a rating out of range, a rating for an
unknown film.

``genome=True`` (ml-csv only) adds the Tag Genome: genome-scores.csv and genome-tags.csv for
films 1-5 (film 6 has none, as most films in a real release). With ``defects`` too it has exactly
one of each genome problem (``GENOME_DEFECTS``).
"""

from __future__ import annotations

from pathlib import Path

MOVIES = [  # id, title as MovieLens writes it, genres
    (1, "Toy Story (1995)", ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
    (2, "Misérables, Les (1995)", ["Drama", "War"]),
    (3, "Heat (1995)", ["Action", "Crime", "Thriller"]),
    (4, "Babylon 5", ["Sci-Fi"]),
    (5, "Star Wars: Episode IV - A New Hope (1977)", ["Action", "Adventure", "Sci-Fi"]),
    (6, "Unlisted (2001)", []),
]
RATINGS = [  # user, movie, rating, unix seconds
    (1, 1, 4.0, 964982703), (1, 3, 5.0, 964981247), (1, 5, 3.0, 964982224),
    (2, 1, 3.0, 1445714835), (2, 2, 4.0, 1445714926), (2, 6, 2.0, 1445714990),
    (3, 4, 5.0, 1306463718), (3, 5, 1.0, 1306464000), (4, 2, 5.0, 1100000000),
]
TAGS = [(2, 1, "pixar", 1445714994), (3, 5, "classic", 1306464100)]
DEFECT_RATINGS = [  # one row per defect; the missing rating is written as an empty field
    (4, 3, None, 1100000100),        # missing value
    (1, 1, 4.0, 964990000),          # duplicate user-movie pair (1, 1)
    (4, 1, 7.0, 1100000200),         # out of range
    (4, 99, 3.0, 1100000300),        # unknown movie
]
GENOME_TAGS = [(1, "space opera"), (2, "heist"), (3, "pixar animation"), (4, "war")]
GENOME = {  # film -> relevance of tags 1-4
    1: (0.05, 0.10, 0.95, 0.02),
    2: (0.03, 0.08, 0.05, 0.90),
    3: (0.10, 0.97, 0.02, 0.15),
    4: (0.93, 0.05, 0.04, 0.20),
    5: (0.99, 0.12, 0.10, 0.45),
}
GENOME_DEFECTS = {  # the integrity check each one trips, and the rows (films) it counts
    "genome_missing_values": 1,               # film 5, tag 3: empty relevance
    "genome_relevance_out_of_range": 1,       # film 3, tag 2: 1.5
    "genome_unknown_tags": 1,                 # film 1, tag 9 (not in genome-tags.csv)
    "genome_for_unknown_movies": 1,           # film 99, tag 1
    "duplicate_genome_pairs": 2,              # film 2, tag 1 twice (both rows)
    "genome_incomplete_vectors": 1,           # film 4 has no tag 4 row
}
LAYOUTS = ("ml-csv", "ml-100k", "ml-1m", "ml-10m")
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def write(layout: str, directory: Path, *, defects: bool = False, genome: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    ratings = RATINGS + (DEFECT_RATINGS if defects else [])
    {"ml-csv": _csv, "ml-100k": _ml100k, "ml-1m": _dat, "ml-10m": _dat}[layout](
        directory, ratings, with_tags=layout in ("ml-csv", "ml-10m"))
    if genome:
        if layout != "ml-csv":
            raise ValueError("the Tag Genome ships in the ml-csv layout only")
        _genome(directory, defects)
    return directory


def genome_rows(defects: bool = False) -> list[tuple]:
    """(movie, tag, relevance) rows of genome-scores.csv; relevance None is an empty field."""
    rows = [(m, t, r) for m, scores in GENOME.items() for t, r in zip((1, 2, 3, 4), scores)]
    if not defects:
        return rows
    replaced = {(5, 3): None, (3, 2): 1.5}
    rows = [(m, t, replaced.get((m, t), r)) for m, t, r in rows if (m, t) != (4, 4)]
    return rows + [(1, 9, 0.3), (99, 1, 0.5), (2, 1, 0.04)]


def _genome(directory: Path, defects: bool) -> None:
    lines = ["movieId,tagId,relevance"] + [f"{m},{t},{'' if r is None else r}" for m, t, r in genome_rows(defects)]
    (directory / "genome-scores.csv").write_text("\n".join(lines) + "\n")
    tags = ["tagId,tag"] + [f"{t},{name}" for t, name in GENOME_TAGS]
    (directory / "genome-tags.csv").write_text("\n".join(tags) + "\n")


def _fmt(rating) -> str:
    return "" if rating is None else f"{rating:.1f}"


def _csv(directory: Path, ratings: list, with_tags: bool) -> None:
    movie_lines = ["movieId,title,genres"] + [
        f'{m},"{t}",{"|".join(g) or "(no genres listed)"}' for m, t, g in MOVIES]
    (directory / "movies.csv").write_text("\r\n".join(movie_lines) + "\r\n", encoding="utf-8")
    rating_lines = ["userId,movieId,rating,timestamp"] + [
        f"{u},{m},{_fmt(r)},{ts}" for u, m, r, ts in ratings]
    (directory / "ratings.csv").write_text("\r\n".join(rating_lines) + "\r\n")
    tag_lines = ["userId,movieId,tag,timestamp"] + [f"{u},{m},{t},{ts}" for u, m, t, ts in TAGS]
    (directory / "tags.csv").write_text("\r\n".join(tag_lines) + "\r\n")


def _ml100k(directory: Path, ratings: list, with_tags: bool) -> None:
    # ml-100k: tab-separated integer ratings, pipe-separated latin-1 items with genre flags.
    lines = [f"{u}\t{m}\t{'' if r is None else f'{r:g}'}\t{ts}" for u, m, r, ts in ratings]
    (directory / "u.data").write_text("\n".join(lines) + "\n")
    items = []
    for m, title, genres in MOVIES:
        flags = ["1" if g.replace("'s", "") in genres else "0" for g in ML100K_GENRES]
        if not genres:
            flags[0] = "1"
        items.append("|".join([str(m), title, "01-Jan-1995", "", "http://example.invalid", *flags]))
    (directory / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (directory / "u.genre").write_text("\n".join(f"{g}|{i}" for i, g in enumerate(ML100K_GENRES)))


def _dat(directory: Path, ratings: list, with_tags: bool) -> None:
    lines = [f"{u}::{m}::{'' if r is None else f'{r:g}'}::{ts}" for u, m, r, ts in ratings]
    (directory / "ratings.dat").write_text("\n".join(lines) + "\n")
    movies = [f"{m}::{t}::{'|'.join(g) or '(no genres listed)'}" for m, t, g in MOVIES]
    (directory / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    if with_tags:
        (directory / "tags.dat").write_text(
            "\n".join(f"{u}::{m}::{t}::{ts}" for u, m, t, ts in TAGS) + "\n")

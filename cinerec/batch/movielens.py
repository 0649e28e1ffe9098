"""MovieLens loaders for every published layout, detected from the files present.

| layout   | releases                                  | files                                  |
|----------|-------------------------------------------|----------------------------------------|
| ml-csv   | ml-latest-small, ml-latest, ml-20m/25m/32m | ratings.csv, movies.csv, tags.csv (UTF-8, header) |
| ml-100k  | ml-100k                                   | u.data (tab), u.item (pipe, latin-1)   |
| ml-1m    | ml-1m                                     | ratings.dat, movies.dat (``::``, latin-1) |
| ml-10m   | ml-10M100K                                | ratings.dat, movies.dat, tags.dat (``::``) |

ml-csv releases that ship the Tag Genome (ml-20m, ml-25m) also have genome-scores.csv
(movieId, tagId, relevance) and genome-tags.csv (tagId, tag): read into ``Dataset.genome`` and
``Dataset.genome_tags`` when present, and counted in the fingerprint.

Rows are parsed, not cleaned: an unparseable number becomes a missing value so that
``batch.integrity`` can count it. Timestamps become epoch milliseconds.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from cinerec.core.dataset import GENOME_COLUMNS, GENOME_TAG_COLUMNS, MOVIE_COLUMNS, RATING_COLUMNS, TAG_COLUMNS, Dataset

LAYOUT_MARKERS = {  # checked in order; the first whose files all exist wins
    "ml-csv": ("ratings.csv", "movies.csv"),
    "ml-100k": ("u.data", "u.item"),
    "ml-10m": ("ratings.dat", "movies.dat", "tags.dat"),
    "ml-1m": ("ratings.dat", "movies.dat"),
}
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")
GENOME_FILES = ("genome-scores.csv", "genome-tags.csv")
NO_GENRES = {"(no genres listed)", "unknown", ""}
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


class DataError(ValueError):
    """The path holds no MovieLens layout we can read."""


def detect_layout(path: Path) -> tuple[str, Path]:
    """(layout name, directory holding its files). Looks in ``path`` and one level below."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such path: {path}")
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    for directory in candidates:
        for layout, markers in LAYOUT_MARKERS.items():
            if all((directory / name).is_file() for name in markers):
                return layout, directory
    known = "; ".join(f"{k}: {', '.join(v)}" for k, v in LAYOUT_MARKERS.items())
    raise DataError(f"{path} holds no MovieLens layout (looked for {known})")


def load(path: Path) -> Dataset:
    layout, directory = detect_layout(path)
    loader = {"ml-csv": _load_csv, "ml-100k": _load_100k, "ml-1m": _load_dat,
              "ml-10m": _load_dat}[layout]
    dataset = loader(directory)
    dataset.layout = layout
    return dataset


def split_title(raw: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title without a year keeps year None."""
    raw = (raw or "").strip()
    match = _TITLE_YEAR.match(raw)
    if not match:
        return raw, None
    return match["title"], int(match["year"])


def split_genres(raw: object) -> list[str]:
    if not isinstance(raw, str):
        return []
    return [g for g in raw.split("|") if g not in NO_GENRES]


def write_csv(dataset: Dataset, directory: Path) -> Path:
    """Writes ``dataset`` in the ml-csv layout (what ``load`` reads back as the same frames)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ratings = dataset.ratings.dropna(subset=list(RATING_COLUMNS))
    pd.DataFrame({"userId": ratings["user_id"].astype(int), "movieId": ratings["movie_id"].astype(int),
                  "rating": ratings["rating"], "timestamp": (ratings["ts"] // 1000).astype(int)}
                 ).to_csv(directory / "ratings.csv", index=False)
    movies = dataset.movies
    titles = [f"{t} ({int(y)})" if pd.notna(y) else t for t, y in zip(movies["title"], movies["year"])]
    genres = ["|".join(g) if len(g) else "(no genres listed)" for g in movies["genres"]]
    pd.DataFrame({"movieId": movies["movie_id"], "title": titles, "genres": genres}
                 ).to_csv(directory / "movies.csv", index=False)
    tags = dataset.tags.dropna(subset=list(TAG_COLUMNS))
    pd.DataFrame({"userId": tags["user_id"].astype(int), "movieId": tags["movie_id"].astype(int),
                  "tag": tags["tag"], "timestamp": (tags["ts"] // 1000).astype(int)}
                 ).to_csv(directory / "tags.csv", index=False)
    if len(dataset.genome) or len(dataset.genome_tags):
        genome = dataset.genome.dropna(subset=list(GENOME_COLUMNS))
        pd.DataFrame({"movieId": genome["movie_id"].astype(int), "tagId": genome["tag_id"].astype(int),
                      "relevance": genome["relevance"]}).to_csv(directory / GENOME_FILES[0], index=False)
        genome_tags = dataset.genome_tags.dropna(subset=list(GENOME_TAG_COLUMNS))
        pd.DataFrame({"tagId": genome_tags["tag_id"].astype(int), "tag": genome_tags["tag"]}
                     ).to_csv(directory / GENOME_FILES[1], index=False)
    return directory


# -- layouts ---------------------------------------------------------------------------------

def _load_csv(directory: Path) -> Dataset:
    files = [directory / "ratings.csv", directory / "movies.csv"]
    ratings = _read_table(directory / "ratings.csv", ",", header=True)
    movies = _read_table(directory / "movies.csv", ",", header=True)
    tags = pd.DataFrame(columns=list(TAG_COLUMNS))
    if (directory / "tags.csv").is_file():
        files.append(directory / "tags.csv")
        tags = _tags_frame(_read_table(directory / "tags.csv", ",", header=True))
    genome, genome_tags = _load_genome(directory, files)
    return Dataset("ml-csv", _movies_frame(movies["movieId"], movies["title"], movies["genres"]),
                   _ratings_frame(ratings), tags, files, genome, genome_tags)


def _load_genome(directory: Path, files: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Tag Genome's (scores, tags), each empty where its file is absent; read files join ``files``."""
    scores = pd.DataFrame(columns=list(GENOME_COLUMNS))
    tags = pd.DataFrame(columns=list(GENOME_TAG_COLUMNS))
    if (directory / GENOME_FILES[0]).is_file():
        files.append(directory / GENOME_FILES[0])
        # ml-25m's file has 15.6 M rows: let pandas parse numbers (an unparseable one makes its
        # column text, which ``_ints``/``to_numeric`` turn into missing values).
        raw = pd.read_csv(directory / GENOME_FILES[0], keep_default_na=False, na_values=[""],
                          low_memory=False)
        scores = pd.DataFrame({"movie_id": _ints(raw.iloc[:, 0]), "tag_id": _ints(raw.iloc[:, 1]),
                               "relevance": pd.to_numeric(raw.iloc[:, 2], errors="coerce").astype("float64")})
    if (directory / GENOME_FILES[1]).is_file():
        files.append(directory / GENOME_FILES[1])
        raw = _read_table(directory / GENOME_FILES[1], ",", header=True)
        tags = pd.DataFrame({"tag_id": _ints(raw.iloc[:, 0]), "tag": raw.iloc[:, 1].astype(object)})
    return scores, tags


def _load_100k(directory: Path) -> Dataset:
    ratings = _read_table(directory / "u.data", "\t", header=False)
    items = _read_table(directory / "u.item", "|", header=False)
    flags = items.iloc[:, 5:5 + len(ML100K_GENRES)]
    genres = flags.apply(lambda row: "|".join(g for g, f in zip(ML100K_GENRES, row) if f == "1"),
                         axis=1) if len(items) else pd.Series([], dtype=object)
    return Dataset("ml-100k", _movies_frame(items[0], items[1], genres), _ratings_frame(ratings),
                   files=[directory / "u.data", directory / "u.item"])


def _load_dat(directory: Path) -> Dataset:
    files = [directory / "ratings.dat", directory / "movies.dat"]
    ratings = _read_double_colon(directory / "ratings.dat", 4)
    movies = _read_double_colon(directory / "movies.dat", 3)
    tags = pd.DataFrame(columns=list(TAG_COLUMNS))
    if (directory / "tags.dat").is_file():
        files.append(directory / "tags.dat")
        tags = _tags_frame(_read_double_colon(directory / "tags.dat", 4))
    return Dataset("ml-1m", _movies_frame(movies[0], movies[1], movies[2]),
                   _ratings_frame(ratings), tags, files)


# -- parsing helpers -------------------------------------------------------------------------

def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # ml-100k and ml-1m ship latin-1 titles


def _read_table(path: Path, sep: str, *, header: bool) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(_decode(path)), sep=sep, header=0 if header else None,
                       dtype=str, keep_default_na=False, na_values=[""], quotechar='"')


def _read_double_colon(path: Path, columns: int) -> pd.DataFrame:
    """``a::b::c`` rows; the last column may itself contain ``::``-free text with colons."""
    split = [line.split("::", columns - 1) for line in _decode(path).splitlines() if line.strip()]
    rows = [row + [None] * (columns - len(row)) for row in split]
    return pd.DataFrame(rows, columns=range(columns), dtype=object)


def _ints(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce").astype("Int64")


def _millis(column: pd.Series) -> pd.Series:
    return (_ints(column) * 1000).astype("Int64")


def _ratings_frame(raw: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({"user_id": _ints(raw.iloc[:, 0]), "movie_id": _ints(raw.iloc[:, 1]),
                          "rating": pd.to_numeric(raw.iloc[:, 2], errors="coerce"),
                          "ts": _millis(raw.iloc[:, 3])})
    return frame[list(RATING_COLUMNS)]


def _tags_frame(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"user_id": _ints(raw.iloc[:, 0]), "movie_id": _ints(raw.iloc[:, 1]),
                         "tag": raw.iloc[:, 2].astype(object), "ts": _millis(raw.iloc[:, 3])})


def _movies_frame(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    split = [split_title(t if isinstance(t, str) else "") for t in titles]
    frame = pd.DataFrame({
        "movie_id": _ints(ids).to_numpy(),
        "title": [t for t, _ in split],
        "year": pd.array([y for _, y in split], dtype="Int64"),
        "genres": [split_genres(g) for g in genres],
    })
    return frame[list(MOVIE_COLUMNS)]

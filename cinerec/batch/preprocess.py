"""Spark preprocessing: clean the ratings and compute user and film features, as Parquet.

Cleaning (each dropped row is counted, by reason):
- rows with a missing user, film, rating or time;
- ratings off the 0.5-5.0 half-star scale;
- ratings of films missing from the catalog;
- duplicate (user, film) pairs: the latest rating wins (``core.events.supersedes``' rule).
Features:
- users: rating count, mean, first/last rating time, days since the last rating
  (relative to the newest rating in the data, so the result does not depend on the clock);
- films: rating count, mean, Bayesian average (``search.documents.bayesian_average``, the rule the
  indexer and the streaming job use) with m the global mean and C the mean number of ratings per
  film; title, year, genres.
Tag Genome (pandas; ml-20m, ml-25m): rows with a missing value, a relevance outside [0, 1], a tag
id not in the tag table or a film not in the catalog are dropped, duplicate (film, tag) pairs keep
the last row, and a film whose remaining vector lacks some tag is dropped whole (its films keep
their other features). Empty frames where the release has no genome.
Output: ``<out>/<fingerprint>/{ratings,users,movies,tags,genome,genome_tags}.parquet`` plus
``report.json``; a second run on the same input reuses it. The fingerprint covers the genome files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from cinerec.core.dataset import GENOME_COLUMNS, GENOME_TAG_COLUMNS, Dataset, fingerprint
from cinerec.core.events import LATEST_ORDER
from cinerec.search.documents import bayesian_average

from . import store

DAY_MS = 86_400_000


def preprocess(dataset: Dataset, out_dir: Path, *, spark=None, force: bool = False,
               excluded_users: set[int] | None = None) -> dict:
    """``excluded_users``: users whose ratings and tags are left out before anything is computed
    (erased users, people without consent to analytics: ``core.privacy``)."""
    from pyspark.sql import functions as F

    from cinerec.platform.spark import spark_session

    target = Path(out_dir) / fingerprint(dataset.files)
    if excluded_users:
        excluded = sorted(map(int, excluded_users))
        target = target.with_name(f"{target.name}-x{hashlib.sha256(json.dumps(excluded).encode()).hexdigest()[:12]}")
        dataset = replace(dataset, ratings=dataset.ratings[~dataset.ratings["user_id"].isin(excluded)],
                          tags=dataset.tags[~dataset.tags["user_id"].isin(excluded)] if "user_id" in dataset.tags
                          else dataset.tags)
    if (target / "report.json").is_file() and not force:
        return json.loads((target / "report.json").read_text())
    spark = spark or spark_session()
    staged = store.save(dataset, target / "input", source=Path(dataset.files[0]).parent
                        if dataset.files else target)  # pandas -> Parquet -> Spark: fast and typed
    raw = spark.read.parquet(f"{staged['path']}/ratings.parquet").select(
        F.col("user_id").cast("long"), F.col("movie_id").cast("long"),
        F.col("rating").cast("double"), F.col("ts").cast("long"))
    movies = spark.read.parquet(f"{staged['path']}/movies.parquet").filter("movie_id IS NOT NULL")
    catalog = movies.select(F.col("movie_id").cast("long")).distinct()

    complete = raw.dropna()
    on_scale = complete.filter((F.col("rating").between(0.5, 5.0)) & ((F.col("rating") * 2) % 1 == 0))
    known = on_scale.join(catalog, "movie_id", "left_semi")
    clean = latest_ratings(known).select("user_id", "movie_id", "rating", "ts").cache()

    counts = {"input": raw.count(), "complete": complete.count(), "on_scale": on_scale.count(),
              "known_movie": known.count(), "clean": clean.count()}
    dropped = {"missing_values": counts["input"] - counts["complete"],
               "out_of_range": counts["complete"] - counts["on_scale"],
               "unknown_movie": counts["on_scale"] - counts["known_movie"],
               "duplicates": counts["known_movie"] - counts["clean"]}

    newest = clean.agg(F.max("ts")).first()[0] or 0
    users = clean.groupBy("user_id").agg(
        F.count("*").alias("rating_count"), F.avg("rating").alias("rating_mean"),
        F.min("ts").alias("first_ts"), F.max("ts").alias("last_ts"),
    ).withColumn("days_since_last", (F.lit(newest) - F.col("last_ts")) / DAY_MS)
    global_mean = clean.agg(F.avg("rating")).first()[0] or 0.0
    per_movie = clean.groupBy("movie_id").agg(F.count("*").alias("rating_count"),
                                              F.avg("rating").alias("rating_mean"),
                                              F.sum("rating").alias("_sum"))
    prior = per_movie.agg(F.avg("rating_count")).first()[0] or 0.0
    per_movie = per_movie.withColumn(
        "bayesian_avg", bayesian_average(F.col("_sum"), F.col("rating_count"), prior, global_mean)).drop("_sum")
    movies = (movies.withColumn("movie_id", F.col("movie_id").cast("long"))
              .withColumn("year", F.col("year").cast("int"))
              .join(per_movie, "movie_id", "left").fillna({"rating_count": 0}))

    target.mkdir(parents=True, exist_ok=True)
    for name, frame in (("ratings", clean), ("users", users), ("movies", movies)):
        frame.coalesce(1).write.mode("overwrite").parquet(str(target / f"{name}.parquet"))
    dataset.tags.to_parquet(target / "tags.parquet", index=False)
    genome, genome_tags, genome_report = clean_genome(dataset)
    genome.to_parquet(target / "genome.parquet", index=False)
    genome_tags.to_parquet(target / "genome_tags.parquet", index=False)
    clean.unpersist()
    report = {"path": str(target), "fingerprint": target.name, "layout": dataset.layout,
              "excluded_users": len(excluded_users or ()),
              "rows": counts, "dropped": dropped, "users": users.count(), "movies": movies.count(),
              "global_mean": global_mean, "bayesian_prior_count": prior, "genome": genome_report}
    (target / "report.json").write_text(json.dumps(report, indent=2))
    return report


def latest_ratings(ratings):
    """Each user's latest rating of each film in a Spark frame (``core.events.supersedes``' rule)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy("user_id", "movie_id").orderBy(*(F.col(c).desc() for c in LATEST_ORDER))
    return ratings.withColumn("_n", F.row_number().over(latest)).filter("_n = 1").drop("_n")


def clean_genome(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(genome, genome_tags, report): the Tag Genome of the catalog's films, complete vectors only."""
    tags = (dataset.genome_tags.dropna().drop_duplicates("tag_id")
            .astype({"tag_id": "int64", "tag": object}).sort_values("tag_id").reset_index(drop=True))
    raw = dataset.genome
    complete = raw.dropna()
    in_range = complete[complete["relevance"].between(0.0, 1.0)]
    known_tag = in_range[in_range["tag_id"].isin(tags["tag_id"])]
    known_movie = known_tag[known_tag["movie_id"].isin(dataset.movies["movie_id"].dropna())]
    unique = known_movie.drop_duplicates(["movie_id", "tag_id"], keep="last")
    sizes = unique.groupby("movie_id")["tag_id"].size()
    whole = unique[unique["movie_id"].isin(sizes.index[sizes == len(tags)])]
    genome = (whole.astype({"movie_id": "int64", "tag_id": "int64", "relevance": "float64"})
              .sort_values(["movie_id", "tag_id"]).reset_index(drop=True))[list(GENOME_COLUMNS)]
    report = {"rows": {"input": len(raw), "clean": len(genome)},
              "dropped": {"missing_values": len(raw) - len(complete),
                          "out_of_range": len(complete) - len(in_range),
                          "unknown_tag": len(in_range) - len(known_tag),
                          "unknown_movie": len(known_tag) - len(known_movie),
                          "duplicates": len(known_movie) - len(unique),
                          "incomplete_vector": len(unique) - len(genome)},
              "incomplete_movies": int((sizes < len(tags)).sum()),
              "movies": int(genome["movie_id"].nunique()), "tags": len(tags)}
    return genome, tags[list(GENOME_TAG_COLUMNS)], report


def read_clean(report: dict) -> dict[str, pd.DataFrame]:
    """The preprocessed frames, read back with pandas: ratings, users, movies, tags, genome,
    genome_tags (the last two empty for outputs written before the genome was kept)."""
    path = Path(report["path"])
    frames = {name: pd.read_parquet(path / f"{name}.parquet")
              for name in ("ratings", "users", "movies", "tags")}
    for name, columns in (("genome", GENOME_COLUMNS), ("genome_tags", GENOME_TAG_COLUMNS)):
        file = path / f"{name}.parquet"
        frames[name] = pd.read_parquet(file) if file.is_file() else pd.DataFrame(columns=list(columns))
    return frames


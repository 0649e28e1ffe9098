"""The hand-off to Spark: what `cinerec data load` stores, Spark reads with the same rows."""

import pytest

from cinerec.batch import store
from cinerec.batch.movielens import load

from movielens_fixtures import write

pytestmark = pytest.mark.spark


def test_spark_reads_a_stored_dataset(spark, tmp_path):
    dataset = load(write("ml-100k", tmp_path / "ml"))
    stored = store.save(dataset, tmp_path / "stored", source=tmp_path / "ml")
    ratings = spark.read.parquet(f"{stored['path']}/ratings.parquet")
    movies = spark.read.parquet(f"{stored['path']}/movies.parquet")
    assert ratings.count() == len(dataset.ratings)
    assert dict(ratings.dtypes)["ts"] == "bigint"
    toy_story = movies.filter("movie_id = 1").first()
    assert toy_story["title"] == "Toy Story" and "Animation" in toy_story["genres"]
    per_user = {r["user_id"]: r["count"] for r in ratings.groupBy("user_id").count().collect()}
    assert per_user == dataset.ratings.groupby("user_id").size().to_dict()

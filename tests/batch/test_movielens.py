import pandas as pd
import pytest

from cinerec.batch.movielens import DataError, detect_layout, load, split_genres, split_title, write_csv
from cinerec.core.dataset import fingerprint

from movielens_fixtures import GENOME, GENOME_TAGS, LAYOUTS, MOVIES, RATINGS, genome_rows, write


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_is_detected_and_loads_the_same_films_and_ratings(tmp_path, layout):
    write(layout, tmp_path / layout)
    assert detect_layout(tmp_path / layout)[0] == layout
    data = load(tmp_path / layout)
    assert data.layout == layout
    movies = data.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Toy Story" and movies.loc[1, "year"] == 1995
    assert movies.loc[2, "title"] == "Misérables, Les"           # latin-1 in ml-100k and ml-1m
    assert movies.loc[5, "title"] == "Star Wars: Episode IV - A New Hope"  # colons in '::' files
    assert pd.isna(movies.loc[4, "year"])                         # a title without a year
    assert movies.loc[6, "genres"] == []                          # (no genres listed)
    assert sorted(movies.loc[3, "genres"]) == ["Action", "Crime", "Thriller"]
    expected = [(u, m, r, ts * 1000) for u, m, r, ts in RATINGS]
    got = [tuple(row) for row in data.ratings.astype(object).itertuples(index=False, name=None)]
    assert got == expected
    assert len(data.tags) == (2 if layout in ("ml-csv", "ml-10m") else 0)


def test_genres_of_ml100k_flags_match_the_csv_names(tmp_path):
    write("ml-100k", tmp_path)
    toy_story = load(tmp_path).movies.set_index("movie_id").loc[1, "genres"]
    assert toy_story == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]


def test_layout_is_found_one_folder_down(tmp_path):
    write("ml-1m", tmp_path / "release" / "ml-1m")
    assert detect_layout(tmp_path / "release") == ("ml-1m", tmp_path / "release" / "ml-1m")


def test_a_folder_without_movielens_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="holds no MovieLens layout"):
        load(tmp_path)
    with pytest.raises(DataError, match="no such path"):
        load(tmp_path / "missing")


def test_unparseable_numbers_become_missing_values_not_crashes(tmp_path):
    write("ml-csv", tmp_path, defects=True)
    ratings = load(tmp_path).ratings
    assert ratings["rating"].isna().sum() == 1
    assert len(ratings) == len(RATINGS) + 4


@pytest.mark.parametrize("raw, title, year", [
    ("Toy Story (1995)", "Toy Story", 1995),
    ("Babylon 5", "Babylon 5", None),
    ("Big Bang Theory, The (2007-)", "Big Bang Theory, The", 2007),
    ("  Heat (1995) ", "Heat", 1995),
    ("1900 (Novecento) (1976)", "1900 (Novecento)", 1976),
])
def test_split_title(raw, title, year):
    assert split_title(raw) == (title, year)


def test_split_genres():
    assert split_genres("Action|Crime") == ["Action", "Crime"]
    assert split_genres("(no genres listed)") == []
    assert split_genres(None) == []


def test_movie_count_matches_fixture(tmp_path):
    write("ml-csv", tmp_path)
    assert len(load(tmp_path).movies) == len(MOVIES)


def test_the_tag_genome_is_read_where_the_release_ships_it(tmp_path):
    data = load(write("ml-csv", tmp_path, genome=True))
    assert list(data.genome.columns) == ["movie_id", "tag_id", "relevance"]
    got = [tuple(row) for row in data.genome.astype(object).itertuples(index=False, name=None)]
    assert got == genome_rows()
    assert sorted(data.genome["movie_id"].unique()) == sorted(GENOME)
    assert [tuple(row) for row in data.genome_tags.astype(object).itertuples(index=False, name=None)] == GENOME_TAGS
    assert {p.name for p in data.files} >= {"genome-scores.csv", "genome-tags.csv"}
    assert data.summary()["genome_scores"] == len(genome_rows())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_without_the_genome_files_the_genome_is_empty_and_nothing_else_changes(tmp_path, layout):
    data = load(write(layout, tmp_path))
    assert data.genome.empty and data.genome_tags.empty
    assert list(data.genome.columns) == ["movie_id", "tag_id", "relevance"]
    assert not any(p.name.startswith("genome") for p in data.files)
    assert "genome_scores" not in data.summary()


def test_the_fingerprint_covers_the_genome(tmp_path):
    plain = load(write("ml-csv", tmp_path / "plain"))
    with_genome = load(write("ml-csv", tmp_path / "genome", genome=True))
    before = fingerprint(with_genome.files)
    assert fingerprint(plain.files) != before
    (tmp_path / "genome" / "genome-scores.csv").write_text("movieId,tagId,relevance\n1,1,0.5\n")
    assert fingerprint(load(tmp_path / "genome").files) != before


def test_an_unparseable_relevance_is_a_missing_value(tmp_path):
    genome = load(write("ml-csv", tmp_path, genome=True, defects=True)).genome
    assert genome["relevance"].isna().sum() == 1
    assert genome.query("movie_id == 3 and tag_id == 2")["relevance"].iloc[0] == 1.5


def test_write_csv_keeps_the_genome(tmp_path):
    data = load(write("ml-csv", tmp_path / "in", genome=True))
    again = load(write_csv(data, tmp_path / "out"))
    pd.testing.assert_frame_equal(again.genome, data.genome)
    pd.testing.assert_frame_equal(again.genome_tags, data.genome_tags)

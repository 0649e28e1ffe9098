import pytest

from batch.integrity import check
from core.dataset import sha256_file
from movielens_fixtures import LAYOUTS, write

DEFECTS = {"ratings_missing_values", "duplicate_user_movie_pairs", "ratings_out_of_range",
           "ratings_for_unknown_movies"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_clean_data_has_no_errors_only_the_normal_warnings(tmp_path, layout):
    report = check(write(layout, tmp_path))
    assert report["errors"] == 0
    assert {p["check"] for p in report["problems"]} == {"movies_without_year", "movies_without_genres"}
    assert report["counts"]["ratings"] == 9 and report["counts"]["users"] == 4


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_defect_is_caught_once(tmp_path, layout):
    report = check(write(layout, tmp_path, defects=True))
    found = {p["check"]: p for p in report["problems"] if p["severity"] == "error"}
    assert set(found) == DEFECTS
    assert found["ratings_missing_values"]["count"] == 1
    assert found["ratings_out_of_range"]["count"] == 1
    assert found["ratings_for_unknown_movies"]["count"] == 1
    assert found["duplicate_user_movie_pairs"]["count"] == 2  # both rows of the pair
    assert found["ratings_for_unknown_movies"]["examples"][0]["movie_id"] == 99


def test_report_has_digests_and_time_span(tmp_path):
    report = check(write("ml-csv", tmp_path))
    assert report["files"]["ratings.csv"]["sha256"] == sha256_file(tmp_path / "ratings.csv")
    assert report["time_span"]["first"].startswith("2000-07-30")
    assert report["time_span"]["last"].startswith("2015-10-24")


def test_a_shipped_checksum_that_does_not_match_is_an_error(tmp_path):
    write("ml-csv", tmp_path)
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  ratings.csv\n"
                                         f"{sha256_file(tmp_path / 'movies.csv')}  movies.csv\n")
    problems = {p["check"]: p for p in check(tmp_path)["problems"]}
    assert problems["sha256_mismatch"]["examples"] == ["ratings.csv"]

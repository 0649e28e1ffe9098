import pytest

from cinerec.batch.integrity import check
from cinerec.core.dataset import sha256_file

from movielens_fixtures import GENOME, GENOME_DEFECTS, GENOME_TAGS, LAYOUTS, genome_rows, write

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


def test_a_clean_genome_adds_counts_and_digests_and_no_problem(tmp_path):
    report = check(write("ml-csv", tmp_path, genome=True))
    assert report["errors"] == 0
    assert report["counts"]["genome_scores"] == len(genome_rows())
    assert report["counts"]["genome_tags"] == len(GENOME_TAGS)
    assert report["counts"]["genome_movies"] == len(GENOME)
    for name in ("genome-scores.csv", "genome-tags.csv"):
        assert report["files"][name]["sha256"] == sha256_file(tmp_path / name)


def test_without_a_genome_the_report_has_no_genome_counts(tmp_path):
    assert not any(k.startswith("genome") for k in check(write("ml-csv", tmp_path))["counts"])


def test_each_genome_defect_is_caught_once(tmp_path):
    report = check(write("ml-csv", tmp_path, defects=True, genome=True))
    found = {p["check"]: p for p in report["problems"] if p["severity"] == "error"}
    assert set(found) == DEFECTS | set(GENOME_DEFECTS)
    assert {name: found[name]["count"] for name in GENOME_DEFECTS} == GENOME_DEFECTS
    assert found["genome_missing_values"]["examples"] == [{"movie_id": 5, "tag_id": 3, "relevance": None}]
    assert found["genome_relevance_out_of_range"]["examples"] == [{"movie_id": 3, "tag_id": 2, "relevance": 1.5}]
    assert found["genome_unknown_tags"]["examples"][0]["tag_id"] == 9
    assert found["genome_for_unknown_movies"]["examples"][0]["movie_id"] == 99
    assert {e["movie_id"] for e in found["duplicate_genome_pairs"]["examples"]} == {2}
    assert found["genome_incomplete_vectors"]["examples"] == [{"movie_id": 4, "tags": 3, "expected": 4}]


def test_genome_tag_table_defects(tmp_path):
    write("ml-csv", tmp_path, genome=True)
    with open(tmp_path / "genome-tags.csv", "a") as fh:
        fh.write("4,war again\n,orphan\n")
    found = {p["check"]: p["count"] for p in check(tmp_path)["problems"] if p["severity"] == "error"}
    assert found == {"duplicate_genome_tag_ids": 2, "genome_tags_missing_values": 1}

import io
import zipfile

import pytest

from cinerec.batch.download import DownloadError, download


def test_an_unreachable_source_fails_with_a_clear_message(tmp_path):
    with pytest.raises(DownloadError) as err:
        download("movielens-small", tmp_path, url="http://127.0.0.1:9/ml-latest-small.zip",
                 timeout_s=2)
    assert "cannot download movielens-small" in str(err.value)
    assert "cinerec data load PATH" in str(err.value)


def test_an_archive_with_wrong_content_fails_its_checksums(tmp_path):
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("movies.csv", "ratings.csv", "tags.csv", "links.csv"):
            zipped.writestr(f"ml-latest-small/{name}", "not the real file\n")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download("movielens-small", tmp_path / "out", url=archive.as_uri())


def test_unknown_dataset_names_are_refused(tmp_path):
    with pytest.raises(DownloadError, match="unknown dataset"):
        download("movielens-huge", tmp_path)


def test_a_non_zip_answer_is_a_clear_error(tmp_path):
    page = tmp_path / "page.zip"
    page.write_bytes(io.BytesIO(b"<html>not found</html>").getvalue())
    with pytest.raises(DownloadError, match="did not return a zip archive"):
        download("movielens-small", tmp_path / "out", url=page.as_uri())

"""`cinerec data download`: fetch a MovieLens release from GroupLens and verify it.

The archive's files are checked against the SHA-256 digests recorded in
``config/datasets.toml``; a mismatch deletes nothing but fails loudly.
"""

from __future__ import annotations

import io
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from cinerec.core.dataset import sha256_file

CATALOG = Path(__file__).resolve().parent.parent / "config" / "datasets.toml"


class DownloadError(RuntimeError):
    """The download could not be fetched or did not verify."""


def known_datasets() -> dict[str, dict]:
    return tomllib.loads(CATALOG.read_text())["datasets"]


def download(name: str, destination: Path, *, url: str | None = None,
             timeout_s: float = 30.0) -> dict:
    datasets = known_datasets()
    if name not in datasets:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(datasets))}")
    spec = datasets[name]
    url = url or spec["url"]
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            archive = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {name} from {url}: {reason}. Without internet "
                            f"access, fetch it elsewhere and pass its directory to "
                            f"`cinerec data load PATH`") from None
    destination = Path(destination)
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            zipped.extractall(destination)
    except zipfile.BadZipFile:
        raise DownloadError(f"{url} did not return a zip archive") from None
    folder = destination / spec["folder"]
    mismatched = [file for file, digest in spec["sha256"].items()
                  if not (folder / file).is_file() or sha256_file(folder / file) != digest]
    if mismatched:
        raise DownloadError(f"{name}: checksum mismatch for {', '.join(mismatched)} in {folder}")
    return {"dataset": name, "path": str(folder), "verified": sorted(spec["sha256"])}

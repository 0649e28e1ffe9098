"""Loaded datasets on disk: Parquet frames plus a manifest, under ``<data_dir>/datasets/<name>``.

This is the hand-off from `cinerec data load` to the batch jobs: Spark and pandas both read it.
"""

from __future__ import annotations

import json
from pathlib import Path

from cinerec.core.dataset import Dataset

FRAMES = ("movies", "ratings", "tags")


def save(dataset: Dataset, directory: Path, *, source: Path) -> dict:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in FRAMES:
        getattr(dataset, name).to_parquet(directory / f"{name}.parquet", index=False)
    manifest = {"source": str(Path(source).resolve()), **dataset.summary()}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"path": str(directory), **manifest}


def cut_dir(data_dir: str | Path, path: Path, fraction: float) -> Path:
    """Where ``cinerec data cut`` puts the first ``fraction`` of the dataset at ``path``."""
    return Path(data_dir) / "datasets" / f"{Path(path).resolve().name}-first{round(fraction * 100)}"

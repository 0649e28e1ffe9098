"""The trained-model artifact: everything serving and streaming need, loadable without Spark.

Files: ``factors.npz`` (user_ids, item_ids, user_factors, item_factors, gram = YᵀY) and
``model.json`` (model name, hyper-parameters, metrics, data fingerprint, split).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARRAYS = ("user_ids", "item_ids", "user_factors", "item_factors", "gram")


@dataclass
class ModelArtifact:
    model: str
    params: dict
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    gram: np.ndarray = None                       # YᵀY, precomputed for fold-in
    metrics: dict = field(default_factory=dict)   # held-out metrics of the same hyper-parameters
    fingerprint: str = ""                         # of the data it was trained on
    split: str = ""                               # id of the held-out split the metrics come from

    def __post_init__(self):
        if self.gram is None:
            self.gram = self.item_factors.T @ self.item_factors

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "factors.npz", **{name: getattr(self, name) for name in ARRAYS})
        (directory / "model.json").write_text(json.dumps(
            {"model": self.model, "params": self.params, "metrics": self.metrics,
             "fingerprint": self.fingerprint, "split": self.split}, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> ModelArtifact:
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        with np.load(directory / "factors.npz") as arrays:
            return cls(**meta, **{name: arrays[name] for name in ARRAYS})

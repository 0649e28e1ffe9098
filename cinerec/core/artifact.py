"""The trained-model artifact: everything serving and streaming need, loadable without Spark.

Files: ``factors.npz`` (user_ids, item_ids, user_factors, item_factors, gram = YᵀY),
``neighbours.npz`` (each item-item part's stored neighbour lists, CSR arrays) and ``model.json``
(model name, hyper-parameters, the serving parts, metrics, data fingerprint, split).

Every served model has factors: a factor model its own; a hybrid its factor part's; an item-item
model those of an implicit ALS fit beside it (``factor_params``). The stream folds each new rating
into them, and the films' "similar" lists come from them. What ranks is ``parts``: each a factor
part (``{"model", "kind": "factor", "weight"}``: Y x_u) or an item-item part (``{"model",
"kind": "item", "input", "weight"}``: the user's inputs times its ``neighbours`` lists), blended by
``core.blend`` — one part alone ranks as the model does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cinerec.core.blend import factor_only

ARRAYS = ("user_ids", "item_ids", "user_factors", "item_factors", "gram")


@dataclass
class ModelArtifact:
    model: str
    params: dict
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    gram: np.ndarray | None = None                # YᵀY, precomputed for fold-in (default: computed)
    metrics: dict = field(default_factory=dict)   # held-out metrics of the same hyper-parameters
    fingerprint: str = ""                         # of the data it was trained on
    split: str = ""                               # id of the held-out split the metrics come from
    factor_params: dict | None = None             # hyper-parameters of the factors (default: params)
    parts: list | None = None                     # how it ranks (default: its factors alone)
    neighbours: dict = field(default_factory=dict)  # item-item part -> stored lists (items x items CSR)

    def __post_init__(self):
        if self.gram is None:
            self.gram = self.item_factors.T @ self.item_factors
        if self.factor_params is None:
            self.factor_params = self.params
        if self.parts is None:
            self.parts = [{"model": self.model, "kind": "factor", "weight": 1.0}]

    @property
    def fold_params(self) -> tuple[float, float, float]:
        """(λ, α, half-life in days) of the factors: what a fold-in solves with (``core.foldin``)."""
        p = self.factor_params
        assert p is not None                      # __post_init__ set it
        return float(p["regularization"]), float(p["alpha"]), float(p.get("half_life_days", 0.0))

    @property
    def factor_only(self) -> bool:
        assert self.parts is not None             # __post_init__ set it
        return factor_only(self.parts)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "factors.npz", **{name: getattr(self, name) for name in ARRAYS})
        np.savez(directory / "neighbours.npz", **{f"{part}.{key}": getattr(lists.tocsr(), key)
                                                 for part, lists in self.neighbours.items()
                                                 for key in ("data", "indices", "indptr")})
        (directory / "model.json").write_text(json.dumps(
            {"model": self.model, "params": self.params, "metrics": self.metrics,
             "fingerprint": self.fingerprint, "split": self.split, "factor_params": self.factor_params,
             "parts": self.parts}, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> ModelArtifact:
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        with np.load(directory / "factors.npz") as arrays:
            loaded = {name: arrays[name] for name in ARRAYS}
        n = len(loaded["item_ids"])
        neighbours = {}
        if (directory / "neighbours.npz").is_file():
            with np.load(directory / "neighbours.npz") as arrays:
                for part in {key.rsplit(".", 1)[0] for key in arrays.files}:
                    neighbours[part] = sp.csr_matrix((arrays[f"{part}.data"], arrays[f"{part}.indices"],
                                                      arrays[f"{part}.indptr"]), shape=(n, n))
        return cls(**meta, **loaded, neighbours=neighbours)

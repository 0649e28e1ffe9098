"""Hybrid: a weighted blend of other recommenders' scores, each standardised per user.

    score(u, i) = Σ_m w_m · (s_m(u, i) − mean_i s_m(u, ·)) / std_i s_m(u, ·)
Components and weights come from the model config, e.g. collaborative EASE + content TF-IDF; each
part has its own TOML's hyper-parameters, ``part_params`` overrides some (``{"als": {"rank": 64}}``).
"""

from __future__ import annotations

import numpy as np

from cinerec.core.blend import standardised

from ..interactions import Interactions
from ._base import Recommender


class Hybrid(Recommender):
    name = "hybrid"

    def _fit(self, train: Interactions) -> None:
        from . import create

        components = self.params.get("components", {"ease": 0.8, "content": 0.2})
        overrides = self.params.get("part_params", {})
        self.parts = [(float(weight), create(name, overrides.get(name)).fit(train))
                      for name, weight in components.items()]

    def refold(self, train: Interactions) -> Hybrid:
        self.train = train
        for _, model in self.parts:
            model.refold(train)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        total = sum(weight * standardised(model.score(users)) for weight, model in self.parts)
        assert isinstance(total, np.ndarray), "a hybrid without parts has no scores"
        return total

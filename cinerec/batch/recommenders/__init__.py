"""Every approach behind one interface (``Recommender``), created by name with TOML params.

Default hyper-parameters live in ``config/models/<name>.toml`` under ``[params]``; a search
space for ``cinerec tune`` under ``[search]``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ._base import ItemItemModel, Recommender
from .als import ExplicitALS, FactorModel, ImplicitALS
from .baselines import ItemKNN, MostPopular, RP3Beta
from .content import ContentTFIDF
from .ease import EASE, SessionEASE
from .hybrid import Hybrid
from .item2vec import Item2Vec
from .multvae import MultVAE

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "models"
MODELS: dict[str, tuple[type[Recommender], dict]] = {
    "popular": (MostPopular, {}),
    "itemknn-cosine": (ItemKNN, {"similarity": "cosine"}),
    "itemknn-pearson": (ItemKNN, {"similarity": "pearson"}),
    "rp3beta": (RP3Beta, {}),
    "content": (ContentTFIDF, {}),
    "ease": (EASE, {}),
    "ease-session": (SessionEASE, {}),
    "als": (ImplicitALS, {}),
    "als-explicit": (ExplicitALS, {}),
    "hybrid": (Hybrid, {}),
    "item2vec": (Item2Vec, {}),
    "mult-vae": (MultVAE, {}),
}

__all__ = ["MODELS", "Recommender", "FactorModel", "Hybrid", "ItemItemModel", "create", "model_config"]


def model_config(name: str, path: Path | None = None) -> dict:
    """{"params": {...}, "search": {...}} from the model's TOML (empty where there is none)."""
    path = path or CONFIG_DIR / f"{name}.toml"
    if not Path(path).is_file():
        return {"params": {}, "search": {}}
    data = tomllib.loads(Path(path).read_text())
    return {"params": data.get("params", {}), "search": data.get("search", {})}


def create(name: str, params: dict | None = None, config: Path | None = None) -> Recommender:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    cls, fixed = MODELS[name]
    recommender = cls(**{**model_config(name, config)["params"], **fixed, **(params or {})})
    recommender.name = name
    return recommender

"""Train, tune and register: the batch pipeline behind `cinerec train` and `cinerec tune`.

    data dir ─load─▶ Dataset ─Spark preprocess─▶ clean frames ─split─▶ holdout
    holdout ─fit + score─▶ held-out metrics      full data ─fit─▶ factors ─▶ ModelArtifact ─▶ MLflow
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cinerec.core.artifact import ModelArtifact
from cinerec.core.settings import Settings

from . import movielens
from .evaluate import Holdout, evaluate_model
from .interactions import Interactions, frames_item_metadata
from .preprocess import preprocess, read_clean
from .recommenders import MODELS, FactorModel, Hybrid, ItemItemModel, Recommender, create, model_config
from .split import stratified_split

SERVING_PROTOCOL, SEED = "stratified", 42
SERVED_NEIGHBOURS = 200       # entries of each film's stored list per item-item part
LOWER_IS_BETTER = {"rmse", "mae"}


def prepare(data_path: Path, settings: Settings, excluded_users: set[int] | None = None) -> tuple[dict, dict]:
    """(clean frames, preprocessing report) for a MovieLens-layout directory, without the ratings
    of ``excluded_users`` (``core.privacy.PrivacyBook.untrainable``)."""
    report = preprocess(movielens.load(data_path), Path(settings.services.data_dir) / "features",
                        excluded_users=excluded_users)
    return read_clean(report), report


def split_id(report: dict, protocol: str = SERVING_PROTOCOL, k: int = 10) -> str:
    return f"{report['fingerprint']}:{protocol}:seed{SEED}:k{k}"


def train(frames: dict, report: dict, *, model: str = "als", params: dict | None = None,
          config: Path | None = None, k: int = 10, neighbours_kept: int = SERVED_NEIGHBOURS
          ) -> tuple[ModelArtifact, float]:
    """Held-out metrics of the hyper-parameters, then the same model fit on all the data and made
    servable (``serving``); ``neighbours_kept``: the length of each film's stored lists of an
    item-item part (the truncation the API scores with)."""
    metrics = heldout_metrics(frames, model=model, params=params, config=config, k=k)
    artifact, seconds = fit_servable(create(model, params, config), frames, report, neighbours_kept=neighbours_kept)
    artifact.metrics, artifact.split = metrics, split_id(report, k=k)
    return artifact, seconds


def fit_servable(model: Recommender, frames: dict, report: dict, *, neighbours_kept: int = SERVED_NEIGHBOURS
                 ) -> tuple[ModelArtifact, float]:
    """``model`` fit on all of ``frames``' ratings and made servable (``serving``), with the seconds taken."""
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    full = Interactions.build(ratings, users, items, frames_item_metadata(frames, items))
    started = time.perf_counter()
    model.fit(full)
    artifact = servable_artifact(model, report["fingerprint"], neighbours_kept=neighbours_kept)
    return artifact, time.perf_counter() - started


def servable_artifact(model: Recommender, fingerprint: str, *, neighbours_kept: int = SERVED_NEIGHBOURS
                      ) -> ModelArtifact:
    """The artifact of a model fit on ``model.train`` (``serving``: its parts, lists and factors)."""
    full = model.fitted
    factors, parts, neighbours = serving(model, full, neighbours_kept)
    return ModelArtifact(model=model.name, params=model.params, user_ids=full.user_ids, item_ids=full.item_ids,
                         user_factors=factors.user_factors.copy(), item_factors=factors.item_factors,
                         fingerprint=fingerprint, factor_params=factors.params, parts=parts, neighbours=neighbours)


def serving(model: Recommender, full: Interactions, neighbours_kept: int
            ) -> tuple[FactorModel, list[dict], dict[str, sp.csr_matrix]]:
    """(the factors the stream folds into, the parts that rank, each item-item part's stored lists)
    of a model fit on ``full``. Servable: a factor model, an item-item model, or a hybrid of those
    with at most one factor part; an item-item model or a hybrid without a factor part gets the
    factors of the default implicit ALS, fit here."""
    components = model.parts if isinstance(model, Hybrid) else [(1.0, model)]
    factors = [m for _, m in components if isinstance(m, FactorModel)]
    unservable = [m.name for _, m in components if not isinstance(m, FactorModel | ItemItemModel)]
    if unservable or len(factors) > 1:
        raise ValueError(f"{model.name} cannot be served: the API ranks with factor and item-item parts "
                         f"(at most one factor part); {', '.join(unservable) or 'two factor parts'} is not")
    parts, neighbours = [], {}
    for weight, part in components:
        if isinstance(part, FactorModel):
            parts.append({"model": part.name, "kind": "factor", "weight": weight})
        else:
            assert isinstance(part, ItemItemModel)              # the only other servable kind (checked above)
            parts.append({"model": part.name, "kind": "item", "input": part.user_input, "weight": weight})
            neighbours[part.name] = part.neighbour_lists(neighbours_kept)
    if not factors:
        default = create("als").fit(full)
        assert isinstance(default, FactorModel)                  # MODELS["als"]: ImplicitALS
        factors = [default]
    return factors[0], parts, neighbours


def heldout_metrics(frames: dict, *, model: str, params: dict | None = None,
                    config: Path | None = None, k: int = 10) -> dict:
    """Metrics of the hyper-parameters on the serving protocol's held-out split."""
    holdout = Holdout.build(frames, SERVING_PROTOCOL, seed=SEED)
    metrics = evaluate_model(create(model, params, config), holdout, k)
    metrics.pop("curve")
    return metrics


def search_space(model: str, config: Path | None = None) -> list[dict]:
    """Every combination of the TOML ``[search]`` lists, over the ``[params]`` defaults."""
    space = model_config(model, config)["search"]
    keys = sorted(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def validation_holdout(frames: dict, seed: int = SEED + 1) -> Holdout:
    """A 75/25 split of the serving split's train part: the test part is never seen."""
    train_part, _ = stratified_split(frames["ratings"], seed=SEED)
    return Holdout.build({**frames, "ratings": train_part}, SERVING_PROTOCOL, seed=seed)


def tune(frames: dict, *, model: str, config: Path | None = None, k: int = 10,
         trials: int | None = None, metric: str = "ndcg", folds: int = 3, on_trial=None) -> dict:
    """Grid (or ``trials`` random points of it) on validation splits carved from the train part.

    Each point is scored on ``folds`` validation splits (seeds 43, 44, …) and ranked by the mean:
    on ml-latest-small one split's nDCG@10 moves by about 0.01 between seeds, more than the
    differences between neighbouring grid points.
    """
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    validations = [validation_holdout(frames, seed=SEED + 1 + fold) for fold in range(folds)]
    candidates = search_space(model, config)
    if trials is not None and trials < len(candidates):
        candidates = random.Random(SEED).sample(candidates, trials)
    results = []
    for point in candidates:
        scored = mean_metrics([evaluate_model(create(model, point, config), v, k) for v in validations], metric)
        results.append({"params": point, "metrics": scored})
        if on_trial:
            on_trial(point, scored)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(results, key=lambda r: sign * r["metrics"].get(metric, float("-inf") * sign))
    return {"model": model, "metric": metric, "k": k, "trials": len(results),
            "validation": f"mean over {folds} stratified 75/25 splits of the training part "
                          f"(seeds {SEED + 1}–{SEED + folds})",
            "best": best, "results": results}


def mean_metrics(per_fold: list[dict], metric: str) -> dict:
    """The mean of each numeric metric over the folds, and the ranking metric of each fold."""
    numeric = [name for name, value in per_fold[0].items() if isinstance(value, int | float)]
    out: dict[str, object] = {name: float(np.mean([fold[name] for fold in per_fold])) for name in numeric}
    if metric in out:
        out[f"{metric}_per_fold"] = [fold[metric] for fold in per_fold]
    return out


def registered_name(settings: Settings, model: str) -> str:
    """Every model that ranks registers as the served ``mlflow.registered_model`` — whichever wins
    the promotion gate is what people get; a rating predictor (``als-explicit``) registers beside
    it (``cinerec-als-explicit``), so it never becomes the serving champion."""
    base = settings.mlflow.registered_model
    return f"{base}-{model}" if MODELS[model][0].predicts_ratings else base

"""Training: both ALS trainers solve the same equations; train/tune produce what serving needs."""

import numpy as np
import pandas as pd
import pytest
from planted import planted_frames

from cinerec.batch.evaluate import Holdout, evaluate_model
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.batch.split import stratified_split
from cinerec.batch.training import search_space, train, tune, validation_holdout
from cinerec.core.artifact import ModelArtifact
from cinerec.core.foldin import FoldIn

PARAMS = {"rank": 6, "iterations": 6, "regularization": 0.05, "alpha": 2.0}


@pytest.fixture(scope="module")
def holdout():
    return Holdout.build(planted_frames(), "stratified")


def fold_in_error(model, train) -> float:
    """Largest gap between trained user vectors and the fold-in of the same ratings (and times)."""
    fold = FoldIn(model.item_factors, model.params["regularization"], model.params["alpha"],
                  model.params.get("half_life_days", 0.0))
    matrix, times = train.matrix, train.times
    worst = 0.0
    for row in range(0, matrix.shape[0], 7):
        items = matrix[row].indices
        assert np.array_equal(times[row].indices, items)
        solved = fold.user_vector(items, matrix[row].data, times[row].data)
        scale = max(np.abs(model.user_factors[row]).max(), 1e-9)
        worst = max(worst, np.abs(solved - model.user_factors[row]).max() / scale)
    return worst


@pytest.mark.parametrize("half_life_days", [0.0, 2.0])     # planted rating times span ~11 days
def test_numpy_trainer_user_vectors_are_exactly_their_fold_in(holdout, half_life_days):
    model = create("als", {**PARAMS, "trainer": "numpy", "half_life_days": half_life_days}).fit(holdout.train)
    assert fold_in_error(model, holdout.train) < 1e-8


@pytest.mark.spark
def test_spark_trainer_user_vectors_are_their_fold_in(holdout, spark):
    # MLlib solves in float32: the same equations up to single precision.
    model = create("als", {**PARAMS, "trainer": "spark"}).fit(holdout.train)
    assert fold_in_error(model, holdout.train) < 1e-3


def test_the_spark_trainer_refuses_forgetting(holdout):
    # MLlib's implicit ALS fixes p = 1 for a rated film: it cannot let a rating fade into "not rated"
    with pytest.raises(ValueError, match="numpy"):
        create("als", {**PARAMS, "trainer": "spark", "half_life_days": 2.0}).fit(holdout.train)


def test_half_life_zero_trains_exactly_the_model_without_forgetting(holdout):
    without = create("als", {**PARAMS, "trainer": "numpy"}).fit(holdout.train)
    off = create("als", {**PARAMS, "trainer": "numpy", "half_life_days": 0}).fit(holdout.train)
    assert np.array_equal(without.user_factors, off.user_factors)
    assert np.array_equal(without.item_factors, off.item_factors)
    forgetting = create("als", {**PARAMS, "trainer": "numpy", "half_life_days": 2.0}).fit(holdout.train)
    assert not np.allclose(without.item_factors, forgetting.item_factors)


def als_reference(r: np.ndarray, t: np.ndarray, *, rank: int, reg: float, alpha: float, half_life_days: float,
                  iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Implicit ALS on a dense users x items matrix as written, with forgetting: w_ui =
    max(2^(−(t_u − t_ui)/h), 2⁻²⁰), t_u the user's latest rating, w = 0 for an unrated film; each
    cell's loss w (1 + α r)(1 − xᵀy)² + (1 − w)(0 − xᵀy)², λ Σw per row; items then users, each row
    solved by its normal equations. Same initialisation as the trainer."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0.0, 0.01, (r.shape[0], rank)), rng.normal(0.0, 0.01, (r.shape[1], rank))
    rated = r > 0
    latest = np.where(rated, t, -np.inf).max(axis=1, keepdims=True)
    w = np.where(rated, np.maximum(0.5 ** ((latest - t) / 86_400_000 / half_life_days), 2.0 ** -20), 0.0)
    seen, unseen = w * (1.0 + alpha * r), 1.0 - w                # weights of the targets 1 and 0

    def solve(fixed, one, zero, n):
        return np.linalg.solve(fixed.T @ np.diag(one + zero) @ fixed + reg * n * np.eye(rank), fixed.T @ one)

    for _ in range(iterations):
        y = np.stack([solve(x, seen[:, i], unseen[:, i], w[:, i].sum()) for i in range(r.shape[1])])
        x = np.stack([solve(y, seen[u], unseen[u], w[u].sum()) for u in range(r.shape[0])])
    return x, y


def test_numpy_trainer_with_forgetting_matches_the_dense_reference():
    day = 86_400_000
    rng = np.random.default_rng(5)
    rated = rng.random((7, 6)) < 0.6
    rated[np.arange(6), np.arange(6)] = True                  # every user and film has a rating
    users, films = np.nonzero(rated)
    frame = pd.DataFrame({"user_id": users + 1, "movie_id": films + 10,
                          "rating": rng.choice([1.0, 3.5, 5.0], len(users)),     # 30 days: up to 6 half-lives
                          "ts": (10**12 + rng.uniform(0, 30, len(users)) * day).astype(np.int64)})
    train = Interactions.build(frame, np.arange(1, 8), np.arange(10, 16))
    params = {"rank": 3, "iterations": 4, "regularization": 0.1, "alpha": 2.0, "half_life_days": 5.0, "seed": 3}
    model = create("als", {**params, "trainer": "numpy"}).fit(train)
    x, y = als_reference(train.matrix.toarray(), train.times.toarray(), rank=3, reg=0.1, alpha=2.0,
                         half_life_days=5.0, iterations=4, seed=3)
    np.testing.assert_allclose(model.item_factors, y, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.user_factors, x, rtol=1e-8, atol=1e-12)


def test_forgetting_needs_rating_times(holdout):
    no_times = Interactions(holdout.train.user_ids, holdout.train.item_ids, holdout.train.matrix, holdout.train.items)
    with pytest.raises(ValueError, match="rating times"):
        create("als", {**PARAMS, "half_life_days": 2.0}).fit(no_times)


@pytest.mark.spark
@pytest.mark.parametrize("trainer", ["numpy", "spark"])
def test_both_trainers_learn_the_planted_pattern(holdout, trainer, spark):
    popular = evaluate_model(create("popular"), holdout)["ndcg"]
    assert evaluate_model(create("als", {**PARAMS, "trainer": trainer}), holdout)["ndcg"] > popular + 0.1


def test_train_makes_a_serving_artifact_with_heldout_metrics():
    frames = planted_frames()
    artifact, seconds = train(frames, {"fingerprint": "abc"}, model="als", params=PARAMS)
    assert artifact.item_factors.shape == (60, 6) and artifact.user_factors.shape == (80, 6)
    assert list(artifact.item_ids) == sorted(frames["ratings"]["movie_id"].unique())
    np.testing.assert_allclose(artifact.gram, artifact.item_factors.T @ artifact.item_factors)
    assert artifact.split == "abc:stratified:seed42:k10"
    assert 0 < artifact.metrics["ndcg"] <= 1 and seconds > 0


def test_only_models_the_api_can_rank_make_serving_artifacts():
    with pytest.raises(ValueError, match="cannot be served"):
        train(planted_frames(), {"fingerprint": "abc"}, model="popular")


def test_an_item_item_artifact_keeps_its_lists_and_the_factors_the_stream_folds_into(tmp_path):
    artifact, _ = train(planted_frames(), {"fingerprint": "abc"}, model="ease", neighbours_kept=7)
    loaded = ModelArtifact.load(artifact.save(tmp_path / "ease"))
    assert loaded.parts == [{"model": "ease", "kind": "item", "input": "binary", "weight": 1.0}]
    assert loaded.factor_params["rank"] == create("als").params["rank"] and not loaded.factor_only
    lists = loaded.neighbours["ease"]
    assert lists.shape == (len(loaded.item_ids),) * 2 and np.diff(lists.indptr).max() == 7
    assert np.allclose(lists.toarray(), artifact.neighbours["ease"].toarray())


def test_search_space_is_the_grid_of_the_toml(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text("[params]\nrank = 4\n[search]\nrank = [2, 4]\nalpha = [1.0, 2.0, 3.0]\n")
    space = search_space("als", config)
    assert len(space) == 6 and {"rank": 2, "alpha": 3.0} in space


def test_tune_picks_the_best_trial(tmp_path):
    config = tmp_path / "ease.toml"
    config.write_text("[search]\nregularization = [1.0, 10.0, 1000.0]\n")
    seen = []
    result = tune(planted_frames(), model="ease", config=config, on_trial=lambda p, m: seen.append(p))
    assert result["trials"] == 3 and len(seen) == 3
    assert result["best"]["metrics"]["ndcg"] == max(r["metrics"]["ndcg"] for r in result["results"])


def test_tune_ranks_points_by_the_mean_over_validation_folds(tmp_path):
    config = tmp_path / "ease.toml"
    config.write_text("[search]\nregularization = [1.0, 1000.0]\n")
    result = tune(planted_frames(), model="ease", config=config, folds=3)
    for trial in result["results"]:
        per_fold = trial["metrics"]["ndcg_per_fold"]
        assert len(per_fold) == 3 and len(set(per_fold)) > 1   # three different validation splits
        assert trial["metrics"]["ndcg"] == pytest.approx(sum(per_fold) / 3)
    with pytest.raises(ValueError, match="folds must be at least 1"):
        tune(planted_frames(), model="ease", config=config, folds=0)


def test_the_validation_split_never_contains_a_test_rating():
    frames = planted_frames()
    train_part, test = stratified_split(frames["ratings"], seed=42)
    pairs = lambda users, items: set(zip(users, items))  # noqa: E731
    test_pairs = pairs(test["user_id"], test["movie_id"])
    held_out = []
    for seed in (43, 44, 45):   # the folds `cinerec tune` scores on
        validation = validation_holdout(frames, seed=seed)
        coo = validation.train.matrix.tocoo()
        assert not pairs(validation.train.user_ids[coo.row], validation.train.item_ids[coo.col]) & test_pairs
        assert not pairs(validation.test["user_id"], validation.test["movie_id"]) & test_pairs
        assert validation.train.matrix.nnz + len(validation.test) == len(train_part)
        held_out.append(pairs(validation.test["user_id"], validation.test["movie_id"]))
    assert len({frozenset(h) for h in held_out}) == 3   # three different splits

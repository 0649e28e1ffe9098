"""Training: both ALS trainers solve the same equations; train/tune produce what serving needs."""

import numpy as np
import pytest
from planted import planted_frames

from batch.evaluate import Holdout, evaluate_model
from batch.recommenders import create
from batch.split import stratified_split
from batch.training import search_space, train, tune, validation_holdout
from core.foldin import FoldIn

PARAMS = {"rank": 6, "iterations": 6, "regularization": 0.05, "alpha": 2.0}


@pytest.fixture(scope="module")
def holdout():
    return Holdout.build(planted_frames(), "stratified")


def fold_in_error(model, matrix) -> float:
    """Largest gap between trained user vectors and the fold-in of the same ratings."""
    fold = FoldIn(model.item_factors, model.params["regularization"], model.params["alpha"])
    worst = 0.0
    for row in range(0, matrix.shape[0], 7):
        items = matrix[row].indices
        solved = fold.user_vector(items, matrix[row].data)
        scale = max(np.abs(model.user_factors[row]).max(), 1e-9)
        worst = max(worst, np.abs(solved - model.user_factors[row]).max() / scale)
    return worst


def test_numpy_trainer_user_vectors_are_exactly_their_fold_in(holdout):
    model = create("als", {**PARAMS, "trainer": "numpy"}).fit(holdout.train)
    assert fold_in_error(model, holdout.train.matrix) < 1e-8


@pytest.mark.spark
def test_spark_trainer_user_vectors_are_their_fold_in(holdout, spark):
    # MLlib solves in float32: the same equations up to single precision.
    model = create("als", {**PARAMS, "trainer": "spark"}).fit(holdout.train)
    assert fold_in_error(model, holdout.train.matrix) < 1e-3


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


def test_only_factor_models_make_serving_artifacts():
    with pytest.raises(ValueError, match="not a factor model"):
        train(planted_frames(), {"fingerprint": "abc"}, model="ease")


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

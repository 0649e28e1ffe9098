"""MLflow registry on a real local SQLite store: registration, the promotion gate, rollback."""

import numpy as np
import pytest

from cinerec.batch.training import registered_name
from cinerec.core.artifact import ModelArtifact
from cinerec.core.settings import load_settings
from cinerec.platform.registry import CHALLENGER, CHAMPION, PromotionRefused, Registry


@pytest.fixture
def registry(tmp_path):
    return Registry(load_settings(env={}).replace(services__data_dir=str(tmp_path)))


def artifact(ndcg: float, split: str = "fp:stratified:seed42:k10") -> ModelArtifact:
    rng = np.random.default_rng(int(ndcg * 1000))
    return ModelArtifact(model="als", params={"rank": 4}, user_ids=np.arange(1, 6), item_ids=np.arange(1, 9),
                         user_factors=rng.normal(size=(5, 4)), item_factors=rng.normal(size=(8, 4)),
                         metrics={"ndcg": ndcg, "precision": ndcg / 2}, fingerprint="fp", split=split)


def test_a_new_version_is_the_challenger_and_loads_back(registry):
    first = registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    assert first["version"] == 1 and first["alias"] == CHALLENGER
    loaded = registry.load(CHALLENGER)
    np.testing.assert_allclose(loaded.gram, loaded.item_factors.T @ loaded.item_factors)
    assert loaded.metrics["ndcg"] == 0.30 and loaded.split == "fp:stratified:seed42:k10"


def test_first_challenger_becomes_champion(registry):
    registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    assert registry.promote()["promoted"]
    assert int(registry.version(CHAMPION).version) == 1


def test_a_worse_challenger_is_refused_with_both_numbers(registry):
    registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    registry.promote()
    registry.register(artifact(0.25), data_path="/data", train_seconds=1.0)
    with pytest.raises(PromotionRefused) as err:
        registry.promote()
    assert "0.2500" in str(err.value) and "0.3000" in str(err.value)
    assert int(registry.version(CHAMPION).version) == 1


def test_the_margin_applies(registry):
    registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    registry.promote()
    registry.register(artifact(0.305), data_path="/data", train_seconds=1.0)
    with pytest.raises(PromotionRefused):
        registry.promote(margin=0.01)
    assert registry.promote(margin=0.001)["champion_now"] == 2


def test_different_splits_need_a_re_evaluated_champion(registry):
    registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    registry.promote()
    registry.register(artifact(0.35, split="other:stratified:seed42:k10"), data_path="/d2", train_seconds=1.0)
    with pytest.raises(ValueError, match="different splits"):
        registry.promote()
    with pytest.raises(PromotionRefused):
        registry.promote(champion_metrics={"ndcg": 0.40})
    assert registry.promote(champion_metrics={"ndcg": 0.33})["promoted"]


def test_rollback_restores_the_replaced_champion(registry):
    registry.register(artifact(0.30), data_path="/data", train_seconds=1.0)
    registry.promote()
    with pytest.raises(LookupError, match="nothing to roll back"):
        registry.rollback()
    registry.register(artifact(0.40), data_path="/data", train_seconds=1.0)
    registry.promote()
    assert registry.rollback() == {"model": "cinerec", "champion_was": 2, "champion_now": 1}
    assert registry.load(CHAMPION).metrics["ndcg"] == 0.30


def test_rating_predictors_register_beside_the_serving_model():
    settings = load_settings(env={})
    assert registered_name(settings, "als") == "cinerec"
    assert registered_name(settings, "hybrid") == "cinerec"
    assert registered_name(settings, "als-explicit") == "cinerec-als-explicit"

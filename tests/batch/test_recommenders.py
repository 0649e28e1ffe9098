"""One contract every recommender meets, and the planted pattern each collaborative one learns."""

import numpy as np
import pytest
from planted import block_of, planted_frames

from cinerec.batch.evaluate import Holdout, evaluate_model
from cinerec.batch.recommenders import MODELS, create

SPARK_MODELS = {"als-explicit"}
FAST_PARAMS = {"als": {"rank": 8, "iterations": 8, "regularization": 0.05},
               "als-explicit": {"rank": 4, "iterations": 8}, "ease": {"regularization": 10.0},
               "ease-session": {"regularization": 10.0},
               "itemknn-cosine": {"neighbours": 20}, "itemknn-pearson": {"neighbours": 20},
               "item2vec": {"dim": 16, "epochs": 50, "neighbours": 20},
               "mult-vae": {"hidden": 64, "latent": 16, "batch": 40, "epochs": 20}}
# Share of top-5 films from the user's own block (chance: about 0.4). Pearson centres each
# film on its mean, and the planted ratings are all 4-5 stars, so it sees a weaker signal.
LEARNS_PATTERN = {"itemknn-cosine": 0.9, "ease": 0.9, "ease-session": 0.9, "als": 0.9, "hybrid": 0.9, "content": 0.9,
                  "itemknn-pearson": 0.7, "item2vec": 0.9, "mult-vae": 0.9}


@pytest.fixture(scope="module")
def holdout():
    return Holdout.build(planted_frames(), "stratified")


def fitted(name, holdout):
    return create(name, FAST_PARAMS.get(name)).fit(holdout.train)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_contract(name, holdout, request):
    if name in SPARK_MODELS:
        request.getfixturevalue("spark")
    model = fitted(name, holdout)
    users = holdout.test_users
    scores = model.score(users[:5])
    assert scores.shape == (5, holdout.train.matrix.shape[1])
    top = model.recommend(users, 10)
    assert top.shape == (len(users), 10)
    for row, items in zip(users, top):
        assert len(set(items)) == 10                                   # no repeats
        assert not set(items) & set(holdout.train.matrix[row].indices)  # never a training item
    np.testing.assert_array_equal(top, fitted(name, holdout).recommend(users, 10))  # deterministic


@pytest.mark.parametrize("name", sorted(LEARNS_PATTERN))
def test_learns_the_planted_pattern(name, holdout):
    threshold = LEARNS_PATTERN[name]
    model = fitted(name, holdout)
    top = model.recommend(holdout.test_users, 5)
    own_block = [block_of(int(holdout.train.item_ids[i])) == (0 if holdout.train.user_ids[u] <= 40 else 1)
                 for u, row in zip(holdout.test_users, top) for i in row]
    assert np.mean(own_block) > threshold, name


def test_collaborative_models_beat_popularity_on_the_planted_data(holdout):
    popular = evaluate_model(create("popular"), holdout)["ndcg"]
    for name in ("ease", "als", "itemknn-cosine"):
        assert evaluate_model(create(name, FAST_PARAMS.get(name)), holdout)["ndcg"] > popular + 0.1, name


@pytest.mark.spark
def test_explicit_als_predicts_ratings(holdout, spark):
    result = evaluate_model(create("als-explicit", FAST_PARAMS["als-explicit"]), holdout)
    assert result["rated_pairs"] > 0
    assert result["rmse"] < 1.5 and result["mae"] <= result["rmse"]


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        create("deep-magic")

"""Item-item models: their score is the user's inputs times their weight rows, and the stored
neighbour lists keep each row's largest weights — what the API ranks with (``search.served``)."""

import numpy as np
import pytest
from planted import planted_frames

from cinerec.batch.interactions import Interactions, item_metadata
from cinerec.batch.recommenders import MODELS, ItemItemModel, create
from cinerec.core.blend import standardised, user_inputs

ITEM_ITEM = [name for name, (cls, _) in MODELS.items() if issubclass(cls, ItemItemModel)]
FAST = {"ease": {"regularization": 50.0}, "ease-session": {"regularization": 50.0}}


@pytest.fixture(scope="module")
def full():
    frames = planted_frames()
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    return Interactions.build(ratings, users, items, item_metadata(frames["movies"], frames["tags"], items))


@pytest.mark.parametrize("name", ITEM_ITEM)
def test_score_is_the_inputs_times_the_weight_rows(full, name):
    model = create(name, FAST.get(name)).fit(full)
    users = np.arange(0, 80, 7)
    every = np.arange(full.matrix.shape[1])
    expected = model.inputs(users) @ model.weight_rows(every)
    assert np.allclose(model.score(users), expected, atol=1e-8)
    assert np.allclose(model.neighbour_lists(len(every)).toarray(), model.weight_rows(every))


def test_neighbour_lists_keep_each_rows_largest_weights(full):
    model = create("ease", {"regularization": 50.0}).fit(full)
    lists = model.neighbour_lists(5)
    dense = model.weight_rows(np.arange(full.matrix.shape[1]))
    for row in range(0, dense.shape[0], 9):
        kept = lists[row].toarray().ravel()
        assert np.count_nonzero(kept) <= 5
        threshold = np.sort(np.abs(dense[row]))[-5]
        assert np.all(np.abs(dense[row][kept != 0]) >= threshold - 1e-12)
        assert np.allclose(kept[kept != 0], dense[row][kept != 0])


def test_centred_inputs_weigh_films_liked_more_than_usual():
    assert user_inputs(np.array([5.0, 3.0, 4.0]), "centred").tolist() == [1.5, -0.5, 0.5]
    assert user_inputs(np.array([2.0, 4.0]), "binary").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown user input"):
        user_inputs(np.array([1.0]), "odd")


def test_standardised_rows_have_mean_0_and_std_1_and_constant_rows_stay_0():
    rows = standardised(np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]))
    assert np.allclose(rows[0].mean(), 0) and np.allclose(rows[0].std(), 1) and np.all(rows[1] == 0)


@pytest.mark.parametrize("name, params", [("als", {"rank": 8, "iterations": 6}), ("ease", FAST["ease"]),
                                          ("content", {}),
                                          ("hybrid", {"components": {"ease": 0.5, "als": 0.3, "content": 0.2},
                                                      "part_params": {"als": {"rank": 8, "iterations": 6}}})])
def test_refold_on_the_training_data_changes_nothing_and_new_ratings_reach_the_scores(full, name, params):
    model = create(name, params).fit(full)
    users = np.arange(0, 80, 9)
    before = np.asarray(model.score(users), dtype=np.float64)
    assert np.allclose(np.asarray(model.refold(full).score(users), dtype=np.float64), before, atol=1e-6)
    more = full.matrix.tolil()
    more[users, 55] = 5.0                                   # every sampled user rates a noise film
    grown = Interactions(full.user_ids, full.item_ids, more.tocsr(), full.items, None)
    after = np.asarray(model.refold(grown).score(users), dtype=np.float64)
    assert not np.allclose(after, before)

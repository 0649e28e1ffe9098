import numpy as np
import pandas as pd
import pytest
from planted import planted_frames

from cinerec.batch.split import split, stratified_split, temporal_split


@pytest.fixture
def ratings():
    return planted_frames()["ratings"]


def test_stratified_is_75_25_per_user_disjoint_and_complete(ratings):
    train, test = stratified_split(ratings)
    assert len(train) + len(test) == len(ratings)
    pairs = lambda f: set(zip(f["user_id"], f["movie_id"]))  # noqa: E731
    assert not pairs(train) & pairs(test)
    per_user = ratings.groupby("user_id").size()
    expected_train = np.round(per_user * 0.75)
    assert (train.groupby("user_id").size() == expected_train).all()


def test_stratified_depends_only_on_the_seed(ratings):
    a, _ = stratified_split(ratings, seed=42)
    b, _ = stratified_split(ratings.sample(frac=1.0, random_state=3).sort_index(), seed=42)
    pd.testing.assert_frame_equal(a, b)
    c, _ = stratified_split(ratings, seed=7)
    assert not a.equals(c)


def test_temporal_holds_out_each_users_latest_fifth(ratings):
    train, test = temporal_split(ratings)
    latest_train = train.groupby("user_id")["ts"].max()
    earliest_test = test.groupby("user_id")["ts"].min()
    assert (latest_train.reindex(earliest_test.index) <= earliest_test).all()
    per_user = ratings.groupby("user_id").size()
    assert (test.groupby("user_id").size() == per_user - np.round(per_user * 0.8)).all()


def test_unknown_protocol_is_refused(ratings):
    with pytest.raises(ValueError, match="unknown protocol"):
        split(ratings, "random")

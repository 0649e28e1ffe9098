"""item2vec and Mult-VAE: their item-item and autoencoder contracts, the seed, and the planted
pattern (the shared contract test in test_recommenders.py runs them too)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from planted import planted_frames

from cinerec.batch.evaluate import Holdout
from cinerec.batch.recommenders import create
from cinerec.batch.recommenders._base import ItemItemModel
from cinerec.batch.recommenders.item2vec import neighbour_weights

ROOT = Path(__file__).resolve().parents[2]
ITEM2VEC = {"dim": 16, "epochs": 50, "neighbours": 20, "power": 2.0}
MULT_VAE = {"hidden": 64, "latent": 16, "batch": 40, "epochs": 20}


@pytest.fixture(scope="module")
def holdout():
    return Holdout.build(planted_frames(), "stratified")


@pytest.fixture(scope="module")
def item2vec(holdout):
    return create("item2vec", ITEM2VEC).fit(holdout.train)


def test_item2vec_scores_are_the_binary_rows_times_its_weight_rows(item2vec, holdout):
    assert isinstance(item2vec, ItemItemModel) and item2vec.user_input == "binary"
    n = holdout.train.matrix.shape[1]
    w = item2vec.weight_rows(np.arange(n))
    users = np.arange(holdout.train.matrix.shape[0])
    np.testing.assert_allclose(item2vec.score(users), holdout.train.binary[users] @ w, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    assert (w >= 0).all()
    assert ((w > 0).sum(axis=0) <= ITEM2VEC["neighbours"]).all()       # each film's neighbours only
    # what the API serves: every row's largest entries (all of them here: 20 per column)
    np.testing.assert_allclose(item2vec.neighbour_lists(n).toarray(), w)


def test_neighbour_weights_are_the_clipped_cosines_kept_per_column_and_powered():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 3))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = np.maximum(unit @ unit.T, 0.0)
    np.fill_diagonal(cos, 0.0)
    expected = np.zeros_like(cos)
    for i in range(7):
        top = np.argsort(-cos[:, i])[:2]
        expected[top, i] = cos[top, i] ** 1.5 * (i + 1)
    got = neighbour_weights(vectors, 2, 1.5, np.arange(1.0, 8.0), block=3).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(neighbour_weights(vectors, 0, 1.0).toarray(), cos, rtol=1e-12)   # 0: all


def test_item2vec_links_films_of_the_same_taste(item2vec, holdout):
    """Nearly all of a planted film's weight goes to films of its own block."""
    n = holdout.train.matrix.shape[1]
    w = item2vec.weight_rows(np.arange(n))
    block = np.array([0 if i <= 25 else 1 if i <= 50 else 2 for i in holdout.train.item_ids])
    same = sum(w[np.ix_(block == b, block == b)].sum() for b in (0, 1))
    assert same > 0.9 * w[block < 2].sum()


def test_item2vec_is_deterministic_across_hash_seeds(item2vec):
    """Same seed, other processes with other PYTHONHASHSEED salts: the same vectors."""
    script = ("import sys, numpy as np; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests'];"
              "from planted import planted_frames; from cinerec.batch.evaluate import Holdout;"
              "from cinerec.batch.recommenders import create;"
              f"m = create('item2vec', {ITEM2VEC!r}).fit(Holdout.build(planted_frames(), 'stratified').train);"
              "sys.stdout.write(m.vectors.tobytes().hex())")
    for salt in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": salt}).stdout
        vectors = np.frombuffer(bytes.fromhex(out), dtype=np.float32).reshape(item2vec.vectors.shape)
        np.testing.assert_array_equal(vectors, item2vec.vectors)


def test_item2vec_seed_changes_the_vectors(item2vec, holdout):
    other = create("item2vec", {**ITEM2VEC, "seed": 7}).fit(holdout.train)
    assert not np.array_equal(other.vectors, item2vec.vectors)


def test_mult_vae_is_deterministic_with_a_seed_and_scores_with_the_encoder_mean(holdout):
    first = create("mult-vae", MULT_VAE).fit(holdout.train)
    again = create("mult-vae", MULT_VAE).fit(holdout.train)
    other = create("mult-vae", {**MULT_VAE, "seed": 7}).fit(holdout.train)
    users = holdout.test_users
    np.testing.assert_array_equal(first.score(users), again.score(users))
    assert not np.array_equal(first.score(users), other.score(users))
    # scoring is deterministic (no dropout, no sampling) and the paper's shapes hold
    np.testing.assert_array_equal(first.score(users), first.score(users))
    n = holdout.train.matrix.shape[1]
    w = first.weights
    assert w["w1"].shape == (n, 64) and w["w2"].shape == (64, 32) and w["w3"].shape == (16, 64) \
        and w["w4"].shape == (64, n)


def test_mult_vae_takes_new_ratings_without_a_fit(holdout):
    """refold keeps the trained network and encodes the new ratings: a user who now rated the
    other block's films gets that block recommended."""
    model = create("mult-vae", MULT_VAE).fit(holdout.train)
    weights = {k: v.copy() for k, v in model.weights.items()}
    train = holdout.train
    user = int(np.flatnonzero(train.user_ids <= 40)[0])                  # a block-1 user
    other = np.flatnonzero((train.item_ids > 25) & (train.item_ids <= 50))
    matrix = train.matrix.tolil()
    matrix[user, :] = 0
    matrix[user, other[:10]] = 5.0
    model.refold(type(train)(train.user_ids, train.item_ids, matrix.tocsr(), train.items))
    assert all(np.array_equal(weights[k], model.weights[k]) for k in weights)
    top = model.recommend(np.array([user]), 5)[0]
    assert all(25 < train.item_ids[i] <= 50 for i in top)

"""item2vec (Barkan & Koenigstein 2016): word2vec's skip-gram with negative sampling over each
user's films in the order they were rated, scored like item-kNN on the learnt embeddings.

    sentences = each user's film columns in time order (``Interactions.histories``)
    v_i       = gensim Word2Vec(sg=1, negative, window, ns_exponent, sample, epochs) input vector
    v_i      −= mean_j v_j  when ``centre`` (SGNS vectors share one common direction, which
                otherwise puts every cosine near 1)
    S_ij      = max(0, cos(v_i, v_j)),  S_ii = 0
    W[:, i]   = the ``neighbours`` largest S_·i kept (each film's nearest films), the rest 0
    W_ji      = W_ji ** power · n_i ** popularity     (n_i: film i's number of ratings; cosine
                knows nothing of how often a film is watched, ``popularity`` > 0 puts it back)
    score(u)  = binary(u) · W          (an ``ItemItemModel``: W's rows are what a rated film adds)

``ns_exponent`` shapes the negative-sampling distribution (count^ns_exponent): 0.75 is word2vec's,
values near 0 or below sample rare films more often, which Caselles-Dupré et al. ("Word2vec
applied to recommendation: hyperparameters matter", RecSys 2018) found to matter for items.

Deterministic given ``seed``: one worker thread (``workers = 1``; gensim's threads interleave
their updates in whatever order they run), gensim 4 draws the initial vectors from
``numpy.random.default_rng(seed)`` and the training's random stream from the same seed, and the
film tokens are the column numbers as strings in a fixed order. gensim's ``hashfxn`` (Python's
``hash``, salted by PYTHONHASHSEED) only seeds vectors of words added by a later vocabulary
update, which this model never does, so PYTHONHASHSEED does not change the result (tested in two
processes with different salts).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ._base import ItemItemModel


class Item2Vec(ItemItemModel):
    name = "item2vec"
    user_input = "binary"

    def _fit(self, train: Interactions) -> None:
        self.vectors = item_vectors(
            train.histories(), train.matrix.shape[1],
            dim=int(self.params.get("dim", 64)), window=int(self.params.get("window", 10)),
            negative=int(self.params.get("negative", 10)),
            ns_exponent=float(self.params.get("ns_exponent", 0.75)),
            sample=float(self.params.get("sample", 1e-3)), epochs=int(self.params.get("epochs", 20)),
            alpha=float(self.params.get("alpha", 0.025)), seed=int(self.params.get("seed", 42)))
        vectors = self.vectors
        if self.params.get("centre", True):
            seen = np.linalg.norm(vectors, axis=1) > 0
            vectors = np.where(seen[:, None], vectors - vectors[seen].mean(axis=0), 0.0)
        counts = np.maximum(np.asarray(train.binary.sum(axis=0)).ravel(), 1.0)
        self.weights = neighbour_weights(vectors, int(self.params.get("neighbours", 100)),
                                         float(self.params.get("power", 1.0)),
                                         counts ** float(self.params.get("popularity", 0.0)))

    def weight_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.weights[rows].toarray()

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.fitted.binary[users] @ self.weights).toarray()


def item_vectors(histories: list[np.ndarray], n_items: int, *, dim: int, window: int, negative: int,
                 ns_exponent: float, sample: float, epochs: int, alpha: float, seed: int) -> np.ndarray:
    """(n_items, dim) skip-gram vectors; films no history contains get a zero vector."""
    from gensim.models import Word2Vec

    sentences = [[str(int(c)) for c in history] for history in histories if len(history) > 1]
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    if not sentences:
        return vectors
    model = Word2Vec(sentences, vector_size=dim, window=window, min_count=1, sg=1, hs=0,
                     negative=negative, ns_exponent=ns_exponent, sample=sample, epochs=epochs,
                     alpha=alpha, min_alpha=alpha / 100, workers=1, seed=seed,
                     max_vocab_size=None, sorted_vocab=1)
    keys = np.array([int(k) for k in model.wv.index_to_key], dtype=np.int64)
    vectors[keys] = model.wv.vectors
    return vectors


def neighbour_weights(vectors: np.ndarray, neighbours: int, power: float,
                      column_scale: np.ndarray | None = None, block: int = 1024) -> sp.csr_matrix:
    """W: cosine similarities clipped at 0, diagonal 0, each column's ``neighbours`` largest
    kept (0: all), raised to ``power``, column i times ``column_scale[i]``. Built in column
    blocks (no dense n x n)."""
    n = len(vectors)
    norms = np.linalg.norm(vectors, axis=1)
    unit = (vectors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float64)
    keep = n - 1 if neighbours <= 0 else min(neighbours, n - 1)
    rows, cols, values = [], [], []
    for start in range(0, n, block):
        index = np.arange(start, min(start + block, n))
        sim = unit @ unit[index].T                                   # (n, block): column i = film i
        sim[index, np.arange(len(index))] = 0.0
        np.maximum(sim, 0.0, out=sim)
        top = np.argpartition(-sim, keep - 1, axis=0)[:keep] if keep < n - 1 else \
            np.broadcast_to(np.arange(n)[:, None], sim.shape)       # (keep, block)
        picked = np.take_along_axis(sim, top, axis=0)
        nonzero = picked > 0
        rows.append(top[nonzero])
        cols.append(np.broadcast_to(index[None, :], top.shape)[nonzero])
        scale = 1.0 if column_scale is None else np.broadcast_to(column_scale[index][None, :], top.shape)[nonzero]
        values.append(picked[nonzero] ** power * scale)
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

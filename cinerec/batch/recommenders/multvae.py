"""Mult-VAE (Liang, Krishnan, Hoffman & Jebara, "Variational Autoencoders for Collaborative
Filtering", WWW 2018), in JAX on the CPU.

    x_u      = the user's binary row, L2-normalised; dropout(p = ``dropout``) on it in training
    encoder  x_u ─▶ tanh(x W₁ + b₁) (``hidden``) ─▶ μ, log σ² (``latent`` each)
    z        = μ + σ ⊙ ε, ε ~ N(0, I) in training;  z = μ for scoring
    decoder  z ─▶ tanh(z W₃ + b₃) (``hidden``) ─▶ logits π_u over every film
    loss     = −Σ_i x_ui log softmax(π_u)_i  +  β · KL(N(μ, σ²) ‖ N(0, I))  (+ ``l2`` Σ‖W‖²)
    β        rises linearly from 0 to ``beta_cap`` over the first ``anneal_share`` of the updates
Adam (``lr``, β₁ 0.9, β₂ 0.999, ε 1e-8, written out below) on batches of ``batch`` users for
``epochs`` passes. Scores are the decoder's logits of the encoder mean. [I → 600 → 200 → 600 → I]
with tanh, dropout 0.5, β cap 0.2, batch 500 and lr 1e-3 are the paper's; its Xavier-initialised
weights and N(0, 0.001²) biases too.

Deterministic given ``seed``: every random draw (initial weights, dropout masks, ε, the order
of users in each epoch) comes from that seed, and XLA's CPU kernels give the same sums for the
same shapes. ``jax`` is imported when a model is fitted, not when the package is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ._base import Recommender


class MultVAE(Recommender):
    name = "mult-vae"

    def _fit(self, train: Interactions) -> None:
        p = self.params
        self.weights = fit_mult_vae(
            train.binary, hidden=int(p.get("hidden", 600)), latent=int(p.get("latent", 200)),
            dropout=float(p.get("dropout", 0.5)), beta_cap=float(p.get("beta_cap", 0.2)),
            anneal_share=float(p.get("anneal_share", 1.0)), epochs=int(p.get("epochs", 100)),
            batch=int(p.get("batch", 500)), lr=float(p.get("lr", 1e-3)), l2=float(p.get("l2", 0.0)),
            seed=int(p.get("seed", 42)))

    def score(self, users: np.ndarray) -> np.ndarray:
        return decode_mean(self.weights, self.fitted.binary[users])

    def refold(self, train: Interactions) -> MultVAE:
        """The encoder reads each user's ratings when scoring: new ratings need no fit."""
        self.train = train
        return self


def _normalised(rows: sp.csr_matrix) -> np.ndarray:
    dense = rows.toarray().astype(np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return dense / np.where(norms > 0, norms, 1.0)


def decode_mean(weights: dict, rows: sp.csr_matrix) -> np.ndarray:
    """Logits of the decoder at the encoder mean, in numpy (scoring needs no JAX)."""
    x = _normalised(rows)
    h = np.tanh(x @ weights["w1"] + weights["b1"])
    mu = (h @ weights["w2"] + weights["b2"])[:, :weights["w3"].shape[0]]
    return np.tanh(mu @ weights["w3"] + weights["b3"]) @ weights["w4"] + weights["b4"]


def fit_mult_vae(binary: sp.csr_matrix, *, hidden: int, latent: int, dropout: float, beta_cap: float,
                 anneal_share: float, epochs: int, batch: int, lr: float, l2: float, seed: int) -> dict:
    """The trained weights as numpy arrays: w1, b1 (encoder), w2, b2 (μ and log σ² side by
    side), w3, b3, w4, b4 (decoder). Adam and the loss: ``_adam_step``."""
    import jax
    import jax.numpy as jnp

    step = _adam_step()
    n_users, n_items = binary.shape
    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    shapes = {"1": (n_items, hidden), "2": (hidden, 2 * latent), "3": (latent, hidden), "4": (hidden, n_items)}
    params = {}
    for name, (fan_in, fan_out) in shapes.items():
        limit = np.sqrt(6.0 / (fan_in + fan_out))                        # Xavier (Glorot) uniform
        params[f"w{name}"] = jnp.asarray(rng.uniform(-limit, limit, (fan_in, fan_out)), dtype=jnp.float32)
        params[f"b{name}"] = jnp.asarray(rng.normal(0.0, 0.001, fan_out), dtype=jnp.float32)

    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    active = np.flatnonzero(np.diff(binary.indptr) > 0)                 # users with no film teach nothing
    per_epoch = -(-len(active) // batch)
    total = max(1, int(round(anneal_share * epochs * per_epoch)))
    t = 0
    for _ in range(epochs):
        order = rng.permutation(active)
        for start in range(0, len(order), batch):
            t += 1
            x = jnp.asarray(binary[order[start:start + batch]].toarray(), dtype=jnp.float32)
            key, sub = jax.random.split(key)
            beta = beta_cap * min(1.0, t / total)
            params, m, v = step(params, m, v, jnp.float32(t), x, sub, jnp.float32(beta),
                                latent=latent, dropout=dropout, lr=lr, l2=l2)
    return {name: np.asarray(value) for name, value in params.items()}


_STEP = None


def _adam_step():
    """One jitted Adam update on the loss of the module docstring, made once per process: XLA compiles it once
    per batch shape and hyper-parameters, not once per fit."""
    global _STEP
    if _STEP is not None:
        return _STEP
    import functools

    import jax
    import jax.numpy as jnp

    def loss(params, x, key, beta, latent, dropout, l2):
        drop_key, eps_key = jax.random.split(key)
        keep = jax.random.bernoulli(drop_key, 1.0 - dropout, x.shape)
        norms = jnp.linalg.norm(x, axis=1, keepdims=True)
        x_in = jnp.where(keep, x / jnp.where(norms > 0, norms, 1.0), 0.0) / (1.0 - dropout)
        h = jnp.tanh(x_in @ params["w1"] + params["b1"])
        out = h @ params["w2"] + params["b2"]
        mu, logvar = out[:, :latent], out[:, latent:]
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(eps_key, mu.shape)
        logits = jnp.tanh(z @ params["w3"] + params["b3"]) @ params["w4"] + params["b4"]
        nll = -jnp.mean(jnp.sum(jax.nn.log_softmax(logits, axis=1) * x, axis=1))
        kl = jnp.mean(jnp.sum(0.5 * (-logvar + jnp.exp(logvar) + mu ** 2 - 1.0), axis=1))
        reg = sum(jnp.sum(params[w] ** 2) for w in ("w1", "w2", "w3", "w4"))
        return nll + beta * kl + l2 * reg

    b1, b2, eps = 0.9, 0.999, 1e-8

    @functools.partial(jax.jit, static_argnames=("latent", "dropout", "lr", "l2"))
    def step(params, m, v, t, x, key, beta, *, latent, dropout, lr, l2):
        grads = jax.grad(loss)(params, x, key, beta, latent, dropout, l2)
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        scale = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
        return params, m, v

    _STEP = step
    return step

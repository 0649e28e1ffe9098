"""How a served model scores one user: each part's scores over every film, standardised per user,
then weighted and summed — the one rule the offline hybrid and the API share.

    z_m(u, ·) = (s_m(u, ·) − mean s_m(u, ·)) / std s_m(u, ·)      (std 0: divided by 1)
    score(u, ·) = Σ_m w_m z_m(u, ·)
A part is a factor model (s = Y x_u, x_u the user's vector) or an item-item model
(s = Σ_{j rated} in_u(j) W_j·, W its stored neighbour lists; ``user_inputs``).
"""

from __future__ import annotations

import numpy as np

INPUTS = ("binary", "centred")


def factor_only(parts: list[dict]) -> bool:
    """Ranked by its factors alone: no part needs the user's rated films (a kNN on the vectors will do)."""
    return all(part["kind"] == "factor" for part in parts)


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row centred on its mean and divided by its standard deviation (1 where that is 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std(axis=-1, keepdims=True)
    return (scores - scores.mean(axis=-1, keepdims=True)) / np.where(std > 0, std, 1.0)


def user_inputs(ratings: np.ndarray, kind: str) -> np.ndarray:
    """What each of a user's ratings puts into an item-item model: 1 (``binary``), or the rating
    minus the user's mean plus 0.5 (``centred``: films liked more than usual weigh more)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    if kind == "binary":
        return np.ones_like(ratings)
    if kind == "centred":
        return ratings - (ratings.mean() if len(ratings) else 0.0) + 0.5
    raise ValueError(f"unknown user input {kind!r}: one of {', '.join(INPUTS)}")

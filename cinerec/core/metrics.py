"""Ranking and rating metrics, defined as Microsoft Recommenders defines them.

Inputs are plain Python: for each user, the ranked list of recommended item ids (top k) and
the set of relevant (held-out) item ids. Every metric averages over users with at least one
relevant item. Gains are binary.

    Precision@k = |top_k ∩ rel| / k
    Recall@k    = |top_k ∩ rel| / |rel|
    nDCG@k      = DCG / IDCG,  DCG = Σ_{i ≤ k, item_i ∈ rel} 1 / log2(i + 1),
                  IDCG = Σ_{i ≤ min(k, |rel|)} 1 / log2(i + 1)
    AP@k        = Σ_{i ≤ k, item_i ∈ rel} Precision@i / |rel|       (MAP: mean of AP@k)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def _users(recommended: Mapping[int, Sequence[int]], relevant: Mapping[int, set]) -> list:
    return [u for u, items in relevant.items() if items]


def precision_at_k(recommended, relevant, k: int) -> float:
    users = _users(recommended, relevant)
    return _mean(len(set(recommended.get(u, [])[:k]) & relevant[u]) / k for u in users)


def recall_at_k(recommended, relevant, k: int) -> float:
    users = _users(recommended, relevant)
    return _mean(len(set(recommended.get(u, [])[:k]) & relevant[u]) / len(relevant[u])
                 for u in users)


def ndcg_at_k(recommended, relevant, k: int) -> float:
    def ndcg(u: int) -> float:
        dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(recommended.get(u, [])[:k])
                  if item in relevant[u])
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant[u]))))
        return dcg / ideal
    return _mean(ndcg(u) for u in _users(recommended, relevant))


def map_at_k(recommended, relevant, k: int) -> float:
    def average_precision(u: int) -> float:
        hits, total = 0, 0.0
        for i, item in enumerate(recommended.get(u, [])[:k]):
            if item in relevant[u]:
                hits += 1
                total += hits / (i + 1)
        return total / len(relevant[u])
    return _mean(average_precision(u) for u in _users(recommended, relevant))


def rmse(predicted: Sequence[float], actual: Sequence[float]) -> float:
    return math.sqrt(_mean((p - a) ** 2 for p, a in zip(predicted, actual, strict=True)))


def mae(predicted: Sequence[float], actual: Sequence[float]) -> float:
    return _mean(abs(p - a) for p, a in zip(predicted, actual, strict=True))


def catalog_coverage(recommended, catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in at least one user's top k."""
    shown = {item for items in recommended.values() for item in items[:k]}
    return len(shown) / catalog_size if catalog_size else 0.0


def novelty(recommended, popularity: Mapping[int, float], k: int) -> float:
    """Mean self-information −log2 p(i) of recommended items, p(i) = share of users who rated i."""
    values = [-math.log2(popularity[item]) for items in recommended.values() for item in items[:k]
              if popularity.get(item, 0) > 0]
    return _mean(values)


def _mean(values: Iterable[float]) -> float:
    total, count = 0.0, 0
    for value in values:
        total += value
        count += 1
    return total / count if count else 0.0

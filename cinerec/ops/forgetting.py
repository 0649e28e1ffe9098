"""`cinerec bench forgetting`: does a model that forgets win its users back after a taste reversal?
The loop demo's story without engines, on the synthetic world (offline, seconds per half-life).

    world      the settings' world, its history dated on the feed's clock (as `demo --loop` dates it;
               ending at a fixed time, so the figures repeat)
    model      implicit ALS fit on it with each half-life (0 = off; ``core.foldin``'s forgetting)
    baseline   each sampled user streams ``BASELINE_RATINGS`` films over 100 s, picked and rated from
               their hidden tastes; their vector is folded in from the whole history
    drift      their tastes turn upside down (``Tastes.drifted``); each minute they stream
               ``per_minute`` more films picked and rated from the new tastes
    CTR        the expected clicks per film shown in their top 10 (the closed-loop users' click
               model: position bias × σ(2·(expected rating − 3.5))), before and each minute after
"""

from __future__ import annotations

import time

import numpy as np

from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.batch.recommenders.als import ImplicitALS
from cinerec.core.settings import Settings
from cinerec.simulator.closed_loop import CLICK_MIDPOINT, expected_ratings, position_bias
from cinerec.simulator.world import EPOCH_MS, HISTORY_SPAN_MS, Tastes, generate, pick_films

BASELINE_RATINGS, BASELINE_S, K = 20, 100, 10


def drift_recovery(settings: Settings, *, half_lives_s: list[float], users: int = 300, rank: int = 64,
                   minutes: int = 5, drift: float = 0.8, feed_rate: float = 200.0, seed: int = 7) -> dict:
    """The CTR of ``users`` sampled users before a reversal of ``drift`` of the tastes and each
    minute after, for each half-life (seconds; 0 = no forgetting)."""
    sim = settings.simulator
    history_s = sim.users * sim.mean_ratings_per_user / feed_rate
    world = generate(seed=sim.seed, users=sim.users, movies=sim.movies, mean_ratings_per_user=sim.mean_ratings_per_user,
                     min_ratings_per_user=sim.min_ratings_per_user, latent_dim=sim.latent_dim,
                     history_end_ms=EPOCH_MS + HISTORY_SPAN_MS, history_span_ms=int(history_s * 1000))  # reproducible
    tastes, ratings = world.tastes, world.ratings
    per_minute = max(1, round(feed_rate * 60 / sim.users))        # one user's share of the feed
    now_ms = int(ratings["ts"].max())
    sample = np.random.default_rng(seed).choice(len(tastes.user_id), min(users, len(tastes.user_id)), replace=False)
    half_lives: dict[str, dict] = {}
    report = {"world": {"users": sim.users, "ratings": len(ratings), "history_s": round(history_s)},
              "sampled_users": len(sample), "drift": drift, "ratings_per_minute": per_minute, "rank": rank,
              "half_lives": half_lives}
    for half_life in half_lives_s:
        started = time.perf_counter()
        model = create("als", {"rank": rank, "iterations": 8, "trainer": "numpy",
                               "half_life_days": half_life / 86_400})
        assert isinstance(model, ImplicitALS)                     # what create("als") makes
        model.fit(Interactions.build(ratings, tastes.user_id, tastes.movie_id))
        fold, rng = model.fold_in(), np.random.default_rng(seed)
        before: list[float] = []
        after: list[list[float]] = [[] for _ in range(minutes)]
        drifted = tastes.drifted(drift, seed)
        for u in sample:
            own = ratings[ratings["user_id"] == tastes.user_id[u]]
            films = list(_positions(tastes, own["movie_id"]))
            values, times = list(own["rating"]), list(own["ts"])
            _stream(tastes, u, BASELINE_RATINGS, now_ms, now_ms + BASELINE_S * 1000, films, values, times, rng)
            before.append(_ctr(tastes, u, model.item_factors @ fold.user_vector(
                np.array(films), np.array(values), np.array(times)), films))
            for minute in range(minutes):
                start = now_ms + (BASELINE_S + 60 * minute) * 1000
                _stream(drifted, u, per_minute, start, start + 60_000, films, values, times, rng)
                after[minute].append(_ctr(drifted, u, model.item_factors @ fold.user_vector(
                    np.array(films), np.array(values), np.array(times)), films))
        half_lives[f"{half_life:g}s" if half_life else "off"] = {
            "ctr_before": round(float(np.mean(before)), 4),
            "ctr_minutes_after": [round(float(np.mean(m)), 4) for m in after],
            "seconds": round(time.perf_counter() - started, 1)}
    return report


def _positions(tastes: Tastes, movie_ids) -> np.ndarray:
    """Positions of ``movie_ids`` in the tastes' (and the model's) film order."""
    position = {int(m): i for i, m in enumerate(tastes.movie_id)}
    return np.array([position[int(m)] for m in movie_ids], dtype=int)


def _stream(tastes: Tastes, u: int, n: int, start_ms: int, end_ms: int, films: list, values: list, times: list,
            rng: np.random.Generator) -> None:
    """``n`` films the user has not rated, picked and rated from ``tastes``, appended in time order."""
    seen = set(films)
    picked = [int(f) for f in pick_films(tastes, u, n + len(seen), rng) if int(f) not in seen][:n]
    films += picked
    values += list(tastes.rate(np.full(len(picked), u), np.array(picked, dtype=int), rng))
    times += list(np.linspace(start_ms, end_ms, len(picked)).astype(np.int64))


def _ctr(tastes: Tastes, u: int, scores: np.ndarray, rated: list) -> float:
    """Expected clicks per film shown in the top ``K`` of ``scores`` (rated films left out)."""
    scores = scores.copy()
    scores[rated] = -np.inf
    top = np.argsort(-scores)[:K]
    expected = expected_ratings(tastes, u)[top]
    return float(np.mean([position_bias(rank + 1) / (1 + np.exp(-(expected[rank] - CLICK_MIDPOINT) * 2))
                          for rank in range(len(top))]))

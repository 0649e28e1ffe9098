"""Simulated people who react to what they are shown (``cinerec simulate --closed-loop``).

Each step one user of the synthetic world asks the API for ``k`` recommendations, sees them, and
clicks each film at rank r with probability ``position_bias(r) · σ(expected rating − CLICK_MIDPOINT)``
(their hidden tastes, plus noise through the draw); a clicked film is watched and rated from the
same tastes. What happened goes to Kafka: an impression, the clicks (``core.feedback``), the
ratings (``core.events``). ``--drift F`` turns the tastes of a fraction F of the users upside
down at the start (what they liked they now dislike): the champion's lists stop suiting them.

The hidden tastes also give each list's truth: ``precision`` (shown films among the user's true
top k of the films the model could show) and ``regret`` (mean expected rating of that top k minus
the shown films'); ``streaming/online.py`` computes the same from the world's tastes file.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import numpy as np

from cinerec.core.events import RatingEvent
from cinerec.core.feedback import click, impression
from cinerec.core.settings import KafkaSettings
from cinerec.platform.kafka import new_producer

from .world import MEAN_RATING, Tastes

CLICK_MIDPOINT = 3.5          # expected rating at which a film at rank 1 is clicked half the time


def position_bias(rank: int) -> float:
    return 1.0 / np.log2(rank + 1)


def expected_ratings(tastes: Tastes, user_index: int) -> np.ndarray:
    """Every film's expected rating by one user (no noise), in ``tastes.movie_id`` order."""
    return (MEAN_RATING + tastes.user_bias[user_index] + tastes.item_bias
            + tastes.item_factors @ tastes.user_factors[user_index])


def truth(tastes: Tastes, user_index: int, shown: list[int], exclude: set[int]) -> tuple[float, float]:
    """(precision, regret) of a shown list against the user's true top len(shown) films."""
    expected = expected_ratings(tastes, user_index)
    position = {int(m): i for i, m in enumerate(tastes.movie_id)}
    candidates = [i for m, i in position.items() if m not in exclude]
    k = len(shown)
    best = sorted(candidates, key=lambda i: -expected[i])[:k]
    shown_idx = [position[m] for m in shown if m in position]
    precision = len(set(best) & set(shown_idx)) / k if k else 0.0
    regret = float(np.mean(expected[best]) - np.mean(expected[shown_idx])) if shown_idx else 0.0
    return precision, regret


class ClosedLoop:
    def __init__(self, tastes: Tastes, kafka: KafkaSettings, api_url: str, *, seed: int, k: int = 10,
                 drift: float = 0.0, users: int | None = None):
        self.tastes = tastes.drifted(drift, seed)
        self.kafka, self.api_url, self.k = kafka, api_url.rstrip("/"), k
        self.rng = np.random.default_rng(seed)
        self.active = min(users or len(tastes.user_id), len(tastes.user_id))
        self.producer = new_producer(kafka)
        self.counts: Counter = Counter()
        self.truth: dict[str, list[float]] = {"precision": [], "regret": []}

    def step(self) -> None:
        """One user asks, sees, clicks and rates."""
        u = int(self.rng.integers(0, self.active))
        user = int(self.tastes.user_id[u])
        try:
            with urllib.request.urlopen(f"{self.api_url}/users/{user}/recommendations?k={self.k}", timeout=5) as r:
                answer = json.loads(r.read())
        except OSError:
            self.counts["request_errors"] += 1
            return
        shown = [int(f["movie_id"]) for f in answer["results"]]
        if not shown:
            return
        now, variant, request = int(time.time() * 1000), answer.get("variant", "champion"), answer.get("request_id") \
            or str(uuid.uuid4())
        self._send(self.kafka.feedback_topic, impression(request, user, variant, shown, now))
        self.counts[f"lists_{variant}"] += 1
        precision, regret = truth(self.tastes, u, shown, set())
        self.truth["precision"].append(precision)
        self.truth["regret"].append(regret)
        expected = expected_ratings(self.tastes, u)
        position = {int(m): i for i, m in enumerate(self.tastes.movie_id)}
        for rank, movie in enumerate(shown, start=1):
            if movie not in position:
                continue
            chance = position_bias(rank) / (1 + np.exp(-(expected[position[movie]] - CLICK_MIDPOINT) * 2))
            if self.rng.random() < chance:
                self._send(self.kafka.feedback_topic, click(request, user, variant, movie, rank, now))
                rating = float(self.tastes.rate(np.array([u]), np.array([position[movie]]), self.rng)[0])
                self._send(self.kafka.ratings_topic,
                           RatingEvent(str(uuid.uuid4()), user, movie, rating, now, "simulator"))
                self.counts[f"clicks_{variant}"] += 1

    def run(self, *, rate: float, duration_s: float | None = None, steps: int | None = None,
            progress: Callable[[int], None] | None = None) -> dict:
        started, done = time.monotonic(), 0
        while (steps is None or done < steps) and (duration_s is None or time.monotonic() - started < duration_s):
            due = started + done / rate if rate else time.monotonic()
            time.sleep(max(0.0, due - time.monotonic()))
            self.step()
            done += 1
            if progress:
                progress(1)
        left = self.producer.flush(30)
        return {"steps": done, "unacknowledged": left, **dict(self.counts),
                "precision": round(float(np.mean(self.truth["precision"])), 4) if self.truth["precision"] else None,
                "regret": round(float(np.mean(self.truth["regret"])), 4) if self.truth["regret"] else None}

    def _send(self, topic: str, event) -> None:
        self.producer.produce(topic, key=event.key, value=event.to_json())
        self.producer.poll(0)

"""Per-user streaming state and what a change to it means downstream (pure logic).

A user's state is their current rating of each film. A re-rating replaces the old value; the
later event time wins (ties broken by event id), so the state after a set of events does not
depend on the order they arrive in. Each change yields a film-statistics delta, and the user's
vector is re-solved exactly from the whole state with ``core.foldin`` (no drift).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.events import RatingEvent
from core.foldin import FoldIn


@dataclass(frozen=True)
class FilmDelta:
    """How one accepted event changes a film's statistics."""
    movie_id: int
    count: int          # +1 for a first rating, 0 for a re-rating
    total: float        # change of the rating sum


@dataclass
class UserState:
    user_id: int
    ratings: dict[int, tuple[float, int, str]] = field(default_factory=dict)  # movie -> (rating, ts, event id)

    def apply(self, event: RatingEvent) -> FilmDelta | None:
        """Folds one event into the state; None when an equal or later rating is already there."""
        current = self.ratings.get(event.movie_id)
        if current is not None and (current[1], current[2]) >= (event.ts, event.event_id):
            return None
        self.ratings[event.movie_id] = (event.rating, event.ts, event.event_id)
        if current is None:
            return FilmDelta(event.movie_id, 1, event.rating)
        return FilmDelta(event.movie_id, 0, event.rating - current[0])

    def vector(self, fold: FoldIn, item_index: dict[int, int]) -> np.ndarray:
        """x_u solved from every current rating of a film the model knows."""
        known = [(item_index[m], r) for m, (r, _, _) in self.ratings.items() if m in item_index]
        if not known:
            return np.zeros(fold.gram.shape[0])
        items, ratings = zip(*sorted(known))
        return fold.user_vector(np.array(items), np.array(ratings))

    def document(self, liked_threshold: float = 4.0) -> dict:
        """The partial ``users`` document of this state (the vector is added by the caller)."""
        values = [r for r, _, _ in self.ratings.values()]
        return {"user_id": self.user_id,
                "liked": sorted(str(m) for m, (r, _, _) in self.ratings.items() if r >= liked_threshold),
                "rated": sorted(str(m) for m in self.ratings),
                "rating_count": len(values), "rating_mean": float(np.mean(values)) if values else None,
                "last_ts": max((ts for _, ts, _ in self.ratings.values()), default=None)}

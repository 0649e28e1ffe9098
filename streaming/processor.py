"""One micro-batch of ratings, end to end, with an exactly-once effect on Elasticsearch.

    records ─validate─▶ accepted events ──▶ per-user state ─▶ fold-in ─▶ users (partial docs)
                    │                   └─▶ film deltas ──▶ films (count, mean)
                    │                   └─▶ ratings (one doc per event id)
                    └─▶ dead letters ──▶ Kafka ``ratings.dlq``

Exactly once: the state after batch n is saved as ``<state_dir>/batch-<n>.json`` only after
every write of batch n. A batch is always computed from the snapshot of batch n − 1, so when
Spark re-runs a batch after a crash it recomputes the same state and writes the same absolute
values under the same ids. Dead letters are at-least-once (a re-run may publish one twice; each
carries its source partition and offset for de-duplication).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .state import UserState
from .validate import Record, validate_records
from core.events import RatingEvent
from core.foldin import FoldIn
from search.indices import bulk_write

KEEP_SNAPSHOTS = 3


@dataclass
class Model:
    """What streaming needs of the champion: item factors and how it was regularised."""
    item_ids: list[int]
    item_factors: object
    regularization: float
    alpha: float
    version: str

    def fold(self) -> FoldIn:
        return FoldIn(self.item_factors, self.regularization, self.alpha)


def initial_state(ratings) -> tuple[dict[int, dict[int, tuple]], dict[int, list]]:
    """(user -> {movie: (rating, ts, "train")}, movie -> [count, rating sum]) of the training data."""
    users: dict[int, dict[int, tuple]] = {}
    for user, movie, rating, ts in ratings[["user_id", "movie_id", "rating", "ts"]].itertuples(index=False, name=None):
        users.setdefault(int(user), {})[int(movie)] = (float(rating), int(ts), "train")
    films = {int(m): [int(g.size), float(g.sum())] for m, g in ratings.groupby("movie_id")["rating"]}
    return users, films


class RatingProcessor:
    def __init__(self, *, es, producer, dlq_topic: str, model: Model, catalog: set[int], state_dir: Path,
                 initial_ratings: dict[int, dict[int, tuple]] | None = None,
                 film_base: dict[int, list] | None = None,
                 films_alias: str = "films", users_alias: str = "users", ratings_alias: str = "ratings"):
        """``initial_ratings``: user -> {movie: (rating, ts, event id)} the model was trained on;
        ``film_base``: movie -> [count, rating sum] of the same data. Both are immutable inputs,
        so a re-run batch never starts from values a crashed run already wrote."""
        self.es, self.producer, self.dlq_topic = es, producer, dlq_topic
        self.initial_ratings = initial_ratings or {}
        self.film_base = film_base or {}
        self.model, self.fold = model, model.fold()
        self.item_index = {int(m): i for i, m in enumerate(model.item_ids)}
        self.catalog = catalog
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.aliases = {"films": films_alias, "users": users_alias, "ratings": ratings_alias}

    def process(self, records: list[Record], batch_id: int) -> dict:
        users, films = self._load(batch_id - 1)                         # state before this batch
        checked = validate_records(records, known_movie=self.catalog.__contains__)
        touched_users: set[int] = set()
        touched_films: set[int] = set()
        for event in checked.accepted:
            state = users.get(event.user_id)
            if state is None:
                state = users[event.user_id] = UserState(event.user_id,
                                                         dict(self.initial_ratings.get(event.user_id, {})))
            delta = state.apply(event)
            if delta is None:
                continue
            touched_users.add(event.user_id)
            touched_films.add(delta.movie_id)
            base = films.get(delta.movie_id) or list(self.film_base.get(delta.movie_id, [0, 0.0]))
            films[delta.movie_id] = [base[0] + delta.count, base[1] + delta.total]
        self._write(checked.accepted, {u: users[u] for u in touched_users}, {m: films[m] for m in touched_films})
        for letter in checked.dead:
            self.producer.produce(self.dlq_topic, key=f"{letter.record.partition}:{letter.record.offset}".encode(),
                                  value=letter.to_json(), headers=letter.headers())
        self.producer.flush(30)
        self._save(batch_id, users, films)
        return {"batch": batch_id, "records": len(records), "accepted": len(checked.accepted),
                "dead": len(checked.dead), "duplicates": checked.duplicates, "users": len(touched_users),
                "films": len(touched_films)}

    # -- writes -----------------------------------------------------------------------------

    def _write(self, events: list[RatingEvent], users: dict[int, UserState], films: dict[int, list]) -> None:
        """All or an exception: a failed document fails the batch, so Spark runs it again."""
        reports = [bulk_write(self.es, self.aliases["ratings"],
                   ((e.event_id, {"event_id": e.event_id, "user_id": e.user_id, "movie_id": e.movie_id,
                                  "rating": e.rating, "ts": e.ts, "source": e.source}) for e in events))]
        reports.append(bulk_write(self.es, self.aliases["users"],
                   ((str(u), {**s.document(), "vector": s.vector(self.fold, self.item_index).tolist(),
                              "model_version": self.model.version}) for u, s in users.items()), op="update"))
        reports.append(bulk_write(self.es, self.aliases["films"],
                                  ((str(m), {"rating_count": int(c), "rating_mean": t / c if c else None})
                                   for m, (c, t) in films.items()), op="update"))
        failed = [r for r in reports if r["failed"]]
        if failed:
            raise RuntimeError(f"Elasticsearch rejected {sum(r['failed'] for r in failed)} documents "
                               f"in {[r['index'] for r in failed]}: {failed[0]['errors'][:1]}")
        for alias in self.aliases.values():
            self.es.indices.refresh(index=alias)

    # -- snapshots ----------------------------------------------------------------------------

    def _load(self, before: int) -> tuple[dict[int, UserState], dict[int, list]]:
        """The newest snapshot of a batch up to ``before`` (Spark's batch ids only grow)."""
        snapshots = [p for p in self.state_dir.glob("batch-*.json") if _batch_id(p) <= before]
        if not snapshots:
            return {}, {}
        data = json.loads(max(snapshots, key=_batch_id).read_text())
        users = {int(u): UserState(int(u), {int(m): tuple(v) for m, v in ratings.items()})
                 for u, ratings in data["users"].items()}
        return users, {int(m): v for m, v in data["films"].items()}

    def _save(self, batch_id: int, users: dict[int, UserState], films: dict[int, list]) -> None:
        path = self.state_dir / f"batch-{batch_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"users": {u: s.ratings for u, s in users.items()}, "films": films}))
        temporary.replace(path)                                          # atomic: all or nothing
        for old in sorted(self.state_dir.glob("batch-*.json"), key=_batch_id)[:-KEEP_SNAPSHOTS]:
            old.unlink()


def _batch_id(path: Path) -> int:
    return int(path.stem.split("-")[1])

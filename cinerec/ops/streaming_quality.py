"""How much ranking quality streaming fold-in keeps compared with retraining (issue: streaming
quality, ``cinerec evaluate --protocol temporal --streaming``).

    temporal holdout: each user's last 20 % of ratings by time are the test set
    train part ─ by time ─▶ first 80 %  ──▶ ALS trained once (item factors fixed from then on)
                        └─▶ last 20 %   ──▶ streamed, in event-time order, through the job's own
                                            state (``stateful.EntityState``) and fold-in
    streaming model  = base item factors + every touched user re-solved from their whole state
    retrained model  = ALS trained on the whole train part
Both rank all items for the same test users with the same exclusions; the ratio of their
nDCG@k is what fold-in keeps.
"""

from __future__ import annotations

import time

import pandas as pd

from cinerec.batch.evaluate import Holdout, evaluate_model, score_model
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.batch.recommenders.als import ImplicitALS
from cinerec.batch.split import split
from cinerec.core.events import RatingEvent
from cinerec.streaming.state import user_vector
from cinerec.streaming.stateful import TRAINING_EVENT, EntityState


def streamed_events(frame: pd.DataFrame) -> list[RatingEvent]:
    """The streamed part as rating events, in event-time order (stable ids like ``replay``)."""
    ordered = frame.sort_values(["ts", "user_id", "movie_id"], kind="stable")
    return [RatingEvent(event_id=f"q-{int(u)}-{int(m)}-{int(ts)}", user_id=int(u), movie_id=int(m),
                        rating=float(r), ts=int(ts), source="replay")
            for u, m, r, ts in ordered[["user_id", "movie_id", "rating", "ts"]].itertuples(index=False)]


def evaluate_streaming(frames: dict[str, pd.DataFrame], *, k: int = 10, model: str = "als",
                       base_fraction: float = 0.8, params: dict | None = None) -> dict:
    holdout = Holdout.build(frames, "temporal")
    train = holdout.train
    train_rows, _ = split(frames["ratings"], "temporal")            # the same rows as holdout.train
    ordered = train_rows.sort_values(["ts", "user_id", "movie_id"], kind="stable")
    cut = int(round(len(ordered) * base_fraction))
    base, streamed = ordered.iloc[:cut], ordered.iloc[cut:]

    started = time.perf_counter()
    als = create(model, params)
    if not isinstance(als, ImplicitALS):
        raise ValueError(f"{model} is not implicit ALS: streaming folds users into an implicit ALS model's factors")
    als.fit(Interactions.build(base, train.user_ids, train.item_ids, train.items))
    base_seconds = time.perf_counter() - started

    started = time.perf_counter()
    fold = als.fold_in()
    known = set(base["movie_id"].astype(int))                    # the job only knows the model's films
    item_index = {int(m): i for i, m in enumerate(train.item_ids) if int(m) in known}
    states: dict[int, EntityState] = {}
    for user, movie, rating, ts in base[["user_id", "movie_id", "rating", "ts"]].itertuples(index=False):
        states.setdefault(int(user), EntityState()).apply(int(movie), float(rating), int(ts), TRAINING_EVENT)
    touched: set[int] = set()
    events = streamed_events(streamed)
    for event in events:
        state = states.setdefault(event.user_id, EntityState())
        if state.apply(event.movie_id, event.rating, event.ts, event.event_id) is not False:
            touched.add(event.user_id)
    for user in sorted(touched):
        als.user_factors[train.user_index([user])[0]] = user_vector(fold, item_index, states[user].rows)
    fold_seconds = time.perf_counter() - started
    als.train = train              # exclude everything rated before the test part, as the retrain does
    streaming = score_model(als, holdout, k)

    retrained = evaluate_model(create(model, params), holdout, k)
    for result in (streaming, retrained):
        result.pop("curve")
    return {"protocol": "temporal", "streaming": True, "k": k, "model": model, "params": als.params,
            "base_ratings": len(base), "streamed_ratings": len(events), "users_refolded": len(touched),
            "test_users": len(holdout.test_users),
            "streaming_model": {**streaming, "train_seconds": round(base_seconds, 3),
                                "fold_in_seconds": round(fold_seconds, 3)},
            "retrained_model": retrained,
            "ndcg_ratio": round(streaming["ndcg"] / retrained["ndcg"], 4) if retrained["ndcg"] else None}

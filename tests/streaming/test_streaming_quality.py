"""Streaming quality: fold-in of the later ratings against the earlier model vs. a full retrain."""

import numpy as np
from planted import planted_frames

from cinerec.batch.split import split
from cinerec.ops.streaming_quality import evaluate_streaming, streamed_events

PARAMS = {"rank": 8, "iterations": 8, "regularization": 0.05}


def test_fold_in_keeps_nearly_all_of_a_retrain():
    frames = planted_frames(seed=3)
    result = evaluate_streaming(frames, k=5, params=PARAMS)
    train, _ = split(frames["ratings"], "temporal")
    assert result["base_ratings"] + result["streamed_ratings"] == len(train)
    assert result["streamed_ratings"] == len(train) - round(0.8 * len(train))
    assert result["users_refolded"] > 0
    assert result["retrained_model"]["ndcg"] > 0.2
    assert result["ndcg_ratio"] >= 0.9


def test_without_fold_in_new_users_get_nothing_and_with_it_they_get_their_block():
    # Users 1..10 rate only after the cut: without fold-in their vectors would stay zero.
    frames = planted_frames(seed=4)
    ratings = frames["ratings"]
    late = ratings["user_id"] <= 10
    frames["ratings"] = ratings.assign(ts=np.where(late, ratings["ts"] + 10**12, ratings["ts"]))
    result = evaluate_streaming(frames, k=5, params=PARAMS)
    assert result["users_refolded"] >= 10
    assert result["ndcg_ratio"] >= 0.9


def test_streamed_events_are_in_event_time_order_with_stable_ids():
    frame = planted_frames(seed=5)["ratings"].head(50)
    events = streamed_events(frame)
    assert [e.ts for e in events] == sorted(frame["ts"])
    assert [e.event_id for e in events] == [e.event_id for e in streamed_events(frame.sample(frac=1, random_state=1))]

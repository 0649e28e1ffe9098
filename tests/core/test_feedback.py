"""The feedback-event contract."""

import json

import pytest

from cinerec.core.events import InvalidEvent
from cinerec.core.feedback import click, impression, parse_feedback


def test_impressions_and_clicks_round_trip():
    shown = impression("r-1", 7, "champion", [3, 1, 2], 1_000)
    assert parse_feedback(shown.to_json()) == shown and shown.key == b"7"
    clicked = click("r-1", 7, "challenger", 1, 2, 1_001)
    assert parse_feedback(clicked.to_json()) == clicked


@pytest.mark.parametrize("change", [
    {"kind": "view"}, {"variant": "other"}, {"movie_ids": []}, {"movie_ids": [0]}, {"user_id": 2**31},
    {"ts": -1}, {"extra": 1}, {"movie_ids": list(range(1, 102))},
])
def test_malformed_feedback_is_refused_with_a_reason(change):
    body = json.loads(impression("r", 1, "champion", [1], 1).to_json()) | change
    with pytest.raises(InvalidEvent) as refused:
        parse_feedback(json.dumps(body).encode())
    assert refused.value.reason in {"bad_feedback", "oversized"}


def test_a_click_needs_its_rank():
    body = json.loads(click("r", 1, "champion", 5, 1, 1).to_json())
    for bad in ({"rank": 0}, {"rank": "1"}):
        with pytest.raises(InvalidEvent):
            parse_feedback(json.dumps(body | bad).encode())
    with pytest.raises(InvalidEvent):
        parse_feedback(b"[1, 2]")

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinerec.core.events import (
    MAX_EVENT_BYTES,
    MAX_FUTURE_MS,
    MAX_ID,
    REASONS,
    InvalidEvent,
    RatingEvent,
    parse_event,
    validate_event,
)


def event(**changes):
    base = {"event_id": str(uuid.uuid4()), "user_id": 7, "movie_id": 42, "rating": 4.5,
            "ts": 1_700_000_000_000, "source": "simulator"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_a_valid_event_round_trips():
    parsed = parse_event(json.dumps(event()).encode())
    assert isinstance(parsed, RatingEvent)
    assert parse_event(parsed.to_json()) == parsed
    assert parsed.key == b"7"


@pytest.mark.parametrize("raw, reason", [
    (b"{not json", "bad_json"),
    (b"[1, 2]", "bad_json"),
    (b"\xff\xfe", "bad_json"),
    (json.dumps(event(rating=...)).encode(), "missing_field"),
    (json.dumps(event(extra=1)).encode(), "unknown_field"),
    (json.dumps(event(user_id="7")).encode(), "wrong_type"),
    (json.dumps(event(movie_id=4.0)).encode(), "wrong_type"),
    (json.dumps(event(rating="4.5")).encode(), "wrong_type"),
    (json.dumps(event(rating=True)).encode(), "wrong_type"),
    (json.dumps(event(ts=None)).encode(), "wrong_type"),
    (json.dumps(event(event_id="abc")).encode(), "bad_event_id"),
    (json.dumps(event(rating=5.5)).encode(), "out_of_range"),
    (json.dumps(event(rating=0.0)).encode(), "out_of_range"),
    (json.dumps(event(rating=3.3)).encode(), "out_of_range"),
    (json.dumps(event(user_id=0)).encode(), "out_of_range"),
    (json.dumps(event(ts=10**14)).encode(), "out_of_range"),
    (json.dumps(event(source="Bad Source!")).encode(), "bad_source"),
    (b"{" + b" " * 5000 + b"}", "oversized"),
    # values no store downstream can hold, each once a poison pill for the job
    (json.dumps(event(user_id=2**70)).encode(), "out_of_range"),          # Arrow: int too large for int64
    (json.dumps(event(user_id=MAX_ID + 1)).encode(), "out_of_range"),     # Elasticsearch: not an integer
    (json.dumps(event(movie_id=-2**63)).encode(), "out_of_range"),
    (json.dumps(event(rating=10**400)).encode(), "out_of_range"),        # float(): OverflowError
    (b"[" * 2000 + b"]" * 2000, "bad_json"),                             # json: RecursionError
    (b'{"user_id": 1, "user_id": 2}', "bad_json"),                       # which one is meant?
    (b'{"rating": NaN}', "missing_field"),
])
def test_each_defect_is_rejected_with_its_reason(raw, reason):
    with pytest.raises(InvalidEvent) as err:
        parse_event(raw)
    assert err.value.reason == reason


@given(rating=st.sampled_from([x / 2 for x in range(1, 11)]),
       user=st.integers(1, MAX_ID), movie=st.integers(1, MAX_ID), ts=st.integers(0, 4 * 10**12))
def test_every_value_on_the_half_star_scale_is_accepted(rating, user, movie, ts):
    parsed = validate_event(event(rating=rating, user_id=user, movie_id=movie, ts=ts))
    assert parsed.rating == rating


@given(rating=st.floats(allow_nan=True, allow_infinity=True))
def test_ratings_off_the_scale_are_rejected(rating):
    if 0.5 <= rating <= 5.0 and (rating * 2).is_integer():
        return
    with pytest.raises(InvalidEvent):
        validate_event(event(rating=rating))


def test_an_event_time_far_after_its_receipt_is_rejected():
    received = 1_700_000_000_000
    assert validate_event(event(ts=received + MAX_FUTURE_MS), received_ms=received).ts == received + MAX_FUTURE_MS
    with pytest.raises(InvalidEvent) as err:
        validate_event(event(ts=received + MAX_FUTURE_MS + 1), received_ms=received)
    assert err.value.reason == "out_of_range"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20)


@given(raw=st.binary(max_size=MAX_EVENT_BYTES + 10) | JSON.map(lambda v: json.dumps(v).encode())
       | st.dictionaries(st.sampled_from(["event_id", "user_id", "movie_id", "rating", "ts", "source"]), JSON)
       .map(lambda v: json.dumps(v).encode()))
def test_any_input_is_an_event_or_an_invalid_event_with_a_known_reason(raw):
    try:
        parsed = parse_event(raw)
    except InvalidEvent as err:
        assert err.reason in REASONS
    else:
        assert 1 <= parsed.user_id <= MAX_ID and 1 <= parsed.movie_id <= MAX_ID

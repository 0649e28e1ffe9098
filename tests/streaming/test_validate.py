import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from cinerec.core.events import RatingEvent
from cinerec.streaming.validate import Record, validate_records


def event(user=1, movie=10, rating=4.0, event_id=None):
    return RatingEvent(event_id or str(uuid.uuid4()), user, movie, rating, 1, "api").to_json()


KNOWN = {10, 11}.__contains__


def test_every_record_ends_on_one_path_with_a_reason():
    same = str(uuid.uuid4())
    records = [Record(event(), 0, 0, b"1"), Record(b"{oops", 0, 1, b"1"),
               Record(event(movie=99), 1, 0, b"1"), Record(event(rating=9.0), 1, 1, b"1"),
               Record(event(event_id=same), 2, 0, b"1"), Record(event(event_id=same), 2, 1, b"1"),
               Record(event(user=2), 2, 2, b"1")]
    out = validate_records(records, known_movie=KNOWN)
    assert len(out.accepted) == 2 and out.duplicates == 1
    assert [d.reason for d in out.dead] == ["bad_json", "unknown_movie", "out_of_range", "wrong_key"]
    letter = out.dead[0]
    assert dict(letter.headers())["source.offset"] == b"1"
    assert json.loads(letter.to_json())["original"] == "{oops"


def test_events_applied_in_an_earlier_batch_are_duplicates():
    first = str(uuid.uuid4())
    out = validate_records([Record(event(event_id=first), 0, 5, b"1")], known_movie=KNOWN,
                           seen={first}.__contains__)
    assert out.accepted == [] and out.duplicates == 1


@given(st.lists(st.tuples(st.binary(max_size=60), st.integers(0, 3)), max_size=40))
def test_nothing_is_lost(raw):
    records = [Record(value, partition, offset) for offset, (value, partition) in enumerate(raw)]
    out = validate_records(records, known_movie=KNOWN)
    assert len(out.accepted) + len(out.dead) + out.duplicates == len(records)

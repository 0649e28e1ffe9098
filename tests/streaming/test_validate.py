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
    # a repeated event id is accepted twice: the keyed state applies it once and counts the repeat
    assert [(e.event_id, r.offset) for e, r in out.accepted if e.event_id == same] == [(same, 0), (same, 1)]
    assert len(out.accepted) == 3
    assert [d.reason for d in out.dead] == ["bad_json", "unknown_movie", "out_of_range", "wrong_key"]
    letter = out.dead[0].letter()
    assert dict(letter.headers())["source.offset"] == b"1" and letter.key == "0:1" and letter.user_id is None
    assert json.loads(letter.letter)["original"] == "{oops"
    assert out.dead[1].letter().user_id == 1                  # the user an unknown film's event names


@given(st.lists(st.tuples(st.binary(max_size=60), st.integers(0, 3)), max_size=40))
def test_nothing_is_lost(raw):
    records = [Record(value, partition, offset) for offset, (value, partition) in enumerate(raw)]
    out = validate_records(records, known_movie=KNOWN)
    assert len(out.accepted) + len(out.dead) == len(records)

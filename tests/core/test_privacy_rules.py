"""The privacy rules: who is a person, what holds before anyone chooses, which choice wins, and
the privacy event's contract."""

import json

import pytest

from cinerec.core.events import InvalidEvent
from cinerec.core.privacy import (
    PrivacyBook,
    PrivacyEvent,
    consent,
    effective,
    erasure,
    parse_privacy_event,
    supersedes_choice,
)
from cinerec.streaming.state import film_totals, film_totals_without

PERSON = 1_000_000_000


def test_people_consent_to_nothing_until_they_choose_research_data_is_used():
    assert effective(PERSON + 3, None, PERSON) == {"personalisation": False, "analytics": False, "erased": False,
                                                   "basis": "consent"}
    assert effective(42, None, PERSON) == {"personalisation": True, "analytics": True, "erased": False,
                                           "basis": "research"}
    chosen = consent(PERSON, personalisation=True, analytics=False, ts=5)
    assert effective(PERSON, chosen, PERSON)["personalisation"] and not effective(PERSON, chosen, PERSON)["analytics"]


def test_the_later_choice_wins_but_an_erasure_is_final():
    first = consent(7, personalisation=True, analytics=True, ts=10)
    assert supersedes_choice(None, first)
    assert supersedes_choice(first, consent(7, personalisation=False, analytics=True, ts=11))
    assert not supersedes_choice(first, consent(7, personalisation=False, analytics=True, ts=9))
    gone = erasure(7, ts=12)
    assert supersedes_choice(first, gone)
    assert not supersedes_choice(gone, consent(7, personalisation=True, analytics=True, ts=99))
    assert not supersedes_choice({**gone.choices(), "ts": 12}, consent(7, personalisation=True, analytics=True, ts=99))


def test_training_leaves_out_the_erased_and_those_who_withdrew_analytics():
    book = PrivacyBook({1: erasure(1, 5), 2: consent(2, personalisation=True, analytics=False, ts=5),
                        3: consent(3, personalisation=False, analytics=True, ts=5)}, PERSON)
    assert book.untrainable() == {1, 2} and book.erased() == {1}


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"user_id": 1}',
    json.dumps({"user_id": 0, "personalisation": True, "analytics": True, "erased": False, "ts": 1,
                "version": "v"}).encode(),
    json.dumps({"user_id": 1, "personalisation": 1, "analytics": True, "erased": False, "ts": 1,
                "version": "v"}).encode(),
    json.dumps({"user_id": 1, "personalisation": True, "analytics": False, "erased": True, "ts": 1,
                "version": "v"}).encode(),
    b'{"user_id": 1, "user_id": 2}', b"x" * 600,
])
def test_invalid_privacy_events_are_refused_with_a_reason(raw):
    with pytest.raises(InvalidEvent) as refused:
        parse_privacy_event(raw)
    assert refused.value.reason in {"bad_json", "bad_privacy_event", "oversized"}


def test_a_privacy_event_round_trips():
    event = PrivacyEvent(5, True, False, False, 123, "2026-12-02")
    assert parse_privacy_event(event.to_json()) == event and event.key == b"5"


def test_removing_a_rating_undoes_adding_it():
    totals = film_totals(film_totals((0, 0.0, 0), None, 4.5), None, 2.0)
    assert film_totals_without(totals, 4.5) == (1, 2.0, 0)

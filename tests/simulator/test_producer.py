import json
from collections import Counter

import numpy as np
import pytest

from cinerec.core.events import InvalidEvent, parse_event
from cinerec.simulator.malformed import KINDS, malform
from cinerec.simulator.producer import Message, publish, simulated_messages
from cinerec.simulator.world import generate

from kafka_helpers import consume_all

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def tastes():
    return generate(seed=3, users=100, movies=200, mean_ratings_per_user=30,
                    min_ratings_per_user=20, latent_dim=4).tastes


def test_exactly_n_valid_events_arrive(settings, tastes):
    n = 3000
    summary = publish(settings.kafka, simulated_messages(tastes, seed=1, rate=0, count=n),
                      topic=settings.kafka.ratings_topic)
    assert summary["sent"] == summary["valid"] == n and summary["failed"] == 0
    messages = consume_all(settings.kafka, settings.kafka.ratings_topic)
    assert len(messages) == n
    events = [parse_event(m.value()) for m in messages]
    assert len({e.event_id for e in events}) == n
    assert all(m.key() == str(e.user_id).encode() for m, e in zip(messages, events))
    assert {e.source for e in events} == {"simulator"}
    per_partition = Counter(str(m.partition()) for m in messages)
    assert summary["partitions"] == dict(per_partition)
    assert len(per_partition) == settings.kafka.partitions
    # Per-user order: one user's events all sit on one partition.
    assert all(len({m.partition() for m, e in zip(messages, events) if e.user_id == u}) == 1
               for u in {e.user_id for e in events})


def test_the_malformed_fraction_is_honoured_and_each_is_rejected(settings, tastes):
    n, fraction = 2000, 0.15
    summary = publish(settings.kafka, simulated_messages(tastes, seed=2, rate=0, count=n,
                                                         malformed=fraction),
                      topic=settings.kafka.ratings_topic)
    assert summary["malformed"]["total"] == int(n * fraction)
    assert set(summary["malformed"]) - {"total"} == set(KINDS)
    rejected = Counter()
    for message in consume_all(settings.kafka, settings.kafka.ratings_topic):
        try:
            parse_event(message.value())
        except InvalidEvent as err:
            rejected[err.reason] += 1
    assert sum(rejected.values()) == int(n * fraction)
    assert {k: v for k, v in summary["malformed"].items() if k != "total"} == dict(rejected)


@pytest.mark.parametrize("kind", KINDS)
def test_each_malformed_kind_fails_validation_with_its_own_reason(kind):
    import random
    event = {"event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "user_id": 1, "movie_id": 2,
             "rating": 4.0, "ts": 1, "source": "simulator"}
    rng = random.Random(0)
    for _ in range(50):
        with pytest.raises(InvalidEvent) as err:
            parse_event(malform(event, kind, rng))
        assert err.value.reason == kind


def test_events_follow_the_hidden_tastes(tastes):
    events = [json.loads(m.value) for m in simulated_messages(tastes, seed=4, rate=0, count=20000)]
    ratings = np.array([e["rating"] for e in events])
    assert set(np.unique(ratings)) <= {x / 2 for x in range(1, 11)}
    movies = Counter(e["movie_id"] for e in events)
    popular = tastes.movie_id[np.argsort(-tastes.log_popularity)[:20]]
    assert sum(movies[m] for m in popular) > 0.2 * len(events)   # 20 of 200 films: 10 % if uniform


def test_pacing_sends_on_schedule_with_an_injected_clock(settings, tastes):
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds
    messages = simulated_messages(tastes, seed=5, rate=100, count=1000)
    summary = publish(settings.kafka, messages, topic=settings.kafka.ratings_topic,
                      duration_s=2.0, clock=lambda: now[0], sleep=sleep)
    # 100 events/s for 2 s of (fake) time: events due at 0.00 .. 1.99 s are sent, no more.
    assert summary["attempted"] == 200
    assert summary["sent"] == 200
    assert now[0] == pytest.approx(1.99, abs=0.011)


def test_a_full_speed_message_list_is_sent_without_sleeping(settings):
    messages = [Message(b"1", b"{}", "valid") for _ in range(10)]
    summary = publish(settings.kafka, messages, topic=settings.kafka.ratings_topic,
                      sleep=lambda s: pytest.fail("slept at full speed"))
    assert summary["sent"] == 10


def test_the_stream_follows_the_history_until_tastes_drift():
    """The simulator's stream is drawn like the world's history (whole sessions of different
    films), so drift metrics against the training data stay quiet on it; a change of taste keeps
    what is watched overall but not who watches what."""
    from cinerec.streaming.online import Reference, _histogram, psi

    world = generate(seed=8, users=400, movies=600, mean_ratings_per_user=40, min_ratings_per_user=20,
                     latent_dim=6)
    reference = Reference.of(world.ratings)

    def stream(tastes):
        events = [json.loads(m.value) for m in simulated_messages(tastes, seed=2, rate=0, count=8000,
                                                                  sessions=(40, 20))]
        films = Counter(e["movie_id"] for e in events)
        shares = np.array([films[m] for m in reference.top_films]
                          + [len(events) - sum(films[m] for m in reference.top_films)], dtype=float)
        return events, psi(reference.ratings, _histogram(np.array([e["rating"] for e in events]))), \
            psi(reference.top_shares, shares)

    events, rating_psi, popularity_psi = stream(world.tastes)
    assert rating_psi < 0.05 and popularity_psi < 0.05, (rating_psi, popularity_psi)
    drifted, drifted_rating_psi, drifted_popularity_psi = stream(world.tastes.drifted(1.0, seed=1))
    assert drifted_rating_psi < 0.05 and drifted_popularity_psi < 0.05
    first = {e["user_id"]: set() for e in events}
    for e in events:
        first[e["user_id"]].add(e["movie_id"])
    overlap = [len(first[e["user_id"]] & {d["movie_id"] for d in drifted if d["user_id"] == e["user_id"]})
               for e in events[:50]]
    assert np.mean(overlap) < 0.5 * np.mean([len(first[e["user_id"]]) for e in events[:50]])

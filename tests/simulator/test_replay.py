import pytest

from cinerec.batch.movielens import load
from cinerec.core.events import parse_event
from cinerec.simulator.producer import publish
from cinerec.simulator.replay import replay_messages

from kafka_helpers import consume_all
from movielens_fixtures import RATINGS, write


def test_replay_orders_by_event_time_and_paces_by_speed(tmp_path):
    ratings = load(write("ml-csv", tmp_path)).ratings
    messages, skipped = replay_messages(ratings, speed=1000.0)
    messages = list(messages)
    assert skipped == 0 and len(messages) == len(RATINGS)
    times = [parse_event(m.value).ts for m in messages]
    assert times == sorted(times)
    assert messages[0].due_s == 0.0
    assert messages[-1].due_s == pytest.approx((times[-1] - times[0]) / 1000 / 1000.0)


def test_replay_event_ids_are_stable_so_a_second_replay_is_deduplicable(tmp_path):
    ratings = load(write("ml-csv", tmp_path)).ratings
    first = [parse_event(m.value).event_id for m in replay_messages(ratings)[0]]
    second = [parse_event(m.value).event_id for m in replay_messages(ratings)[0]]
    assert first == second and len(set(first)) == len(first)


def test_incomplete_rows_are_skipped_and_counted(tmp_path):
    ratings = load(write("ml-csv", tmp_path, defects=True)).ratings
    messages, skipped = replay_messages(ratings, limit=5)
    assert skipped == 1
    assert len(list(messages)) == 5


@pytest.mark.services
def test_replayed_events_arrive(settings, tmp_path):
    ratings = load(write("ml-1m", tmp_path)).ratings
    messages, _ = replay_messages(ratings)
    summary = publish(settings.kafka, messages, topic=settings.kafka.ratings_topic)
    assert summary["sent"] == len(RATINGS)
    arrived = [parse_event(m.value()) for m in consume_all(settings.kafka, settings.kafka.ratings_topic)]
    assert sorted((e.user_id, e.movie_id) for e in arrived) == sorted((u, m) for u, m, _, _ in RATINGS)
    assert {e.source for e in arrived} == {"replay"}


@pytest.mark.parametrize("layout", ["ml-csv", "ml-100k", "ml-1m"])
def test_time_cut_trains_on_the_past_and_replays_only_the_future_at_a_steady_rate(tmp_path, layout):
    from cinerec.batch.movielens import write_csv
    from cinerec.simulator.replay import time_cut

    dataset = load(write(layout, tmp_path / "src"))
    before, after = time_cut(dataset.ratings, 0.5)
    assert len(before) + len(after) == len(dataset.ratings) and before["ts"].max() <= after["ts"].min()
    dataset.ratings = before
    again = load(write_csv(dataset, tmp_path / "cut"))
    assert sorted(map(tuple, again.ratings.values.tolist())) == sorted(map(tuple, before.values.tolist()))
    assert list(again.movies["title"]) == list(dataset.movies["title"])
    messages = list(replay_messages(load(tmp_path / "src").ratings, rate=100.0, after=0.5)[0])
    assert [parse_event(m.value).ts for m in messages] == sorted(after["ts"])
    assert [m.due_s for m in messages] == pytest.approx([i / 100.0 for i in range(len(messages))])

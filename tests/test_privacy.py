"""Erasure end to end on the real engines: a user who rated through the batch data (the world the
champion was trained on) and through the streaming path is erased with `cinerec privacy erase`;
the streaming job, restarted, applies the erasure and drops their later events; `cinerec privacy
audit` finds nothing left (only what docs/privacy.md says is retained: raw events until the topic's
retention, the erasure record, a champion trained before the erasure), and every film's
statistics equal the ledger without that user. Also: the data catalog describes every field."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
from chaos_helpers import assert_ledger, expected_state, ratings_indexed, stream, trained_world
from confluent_kafka import Producer

from cinerec.cli.main import main
from cinerec.core.events import RatingEvent
from cinerec.simulator.producer import publish, simulated_messages
from cinerec.simulator.world import Tastes

ERASED = 7                                   # a user of the synthetic world: batch data and streamed events


def own_events(settings, user: int, films: list[int]) -> None:
    producer = Producer(settings.kafka.client_config())
    for movie in films:
        event = RatingEvent(str(uuid.uuid4()), user, movie, 4.5, int(time.time() * 1000), "test")
        producer.produce(settings.kafka.ratings_topic, key=event.key, value=event.to_json())
    assert producer.flush(10) == 0


def run_until_caught_up(env, settings, data_dir: Path, es, log: Path, erased=frozenset(), timeout_s: float = 300):
    """Starts `cinerec stream`, waits until it indexed every accepted event, stops it (SIGTERM)."""
    job = stream(env, log=log)
    _, accepted = expected_state(settings, data_dir, erased)
    deadline = time.monotonic() + timeout_s
    while ratings_indexed(es) != len(accepted) or (erased and es.exists(index="users", id=str(ERASED))):
        assert job.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{ratings_indexed(es)} of {len(accepted)}: {log.read_text()[-2000:]}"
        time.sleep(1)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 0, log.read_text()[-3000:]


def cli_json(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()                                        # what earlier commands printed
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.services
@pytest.mark.spark
def test_erasure_reaches_every_store_and_survives_a_restart(spark, services, base_settings, fresh_indices,
                                                            tmp_path, capsys, monkeypatch):
    es, data_dir, log = fresh_indices, tmp_path / "var", tmp_path / "stream.log"
    with trained_world(base_settings, data_dir, "privacy") as (settings, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        tastes = Tastes.load(data_dir / "world" / "tastes.npz")
        publish(settings.kafka, simulated_messages(tastes, seed=5, rate=0, count=800),
                topic=settings.kafka.ratings_topic)
        own_events(settings, ERASED, [1, 2, 3])
        run_until_caught_up(env, settings, data_dir, es, log)

        code, before = cli_json(capsys, "privacy", "audit", str(ERASED))
        with capsys.disabled():
            print("\naudit before:", json.dumps(before["found"]))
        assert code == 1 and not before["clean"]
        for store in ("elasticsearch users", "elasticsearch ratings", "streaming state (user)",
                      "streaming state (films)", "training features", "champion model"):
            assert before["found"][store] > 0, store

        code, erased = cli_json(capsys, "privacy", "erase", str(ERASED))
        assert code == 0 and erased["erased"] and erased["training_features_deleted"]
        own_events(settings, ERASED, [4, 5])                   # after the erasure: dropped by the job
        publish(settings.kafka, simulated_messages(tastes, seed=6, rate=0, count=300),
                topic=settings.kafka.ratings_topic)
        run_until_caught_up(env, settings, data_dir, es, log, erased=frozenset({ERASED}))   # a restarted job

        code, after = cli_json(capsys, "privacy", "audit", str(ERASED))
        with capsys.disabled():
            print("\naudit after:", json.dumps(after["found"]), json.dumps(after["retained"]))
        assert code == 0 and after["clean"], after["still_held"]
        assert after["found"]["streaming state (films)"] == 0 and after["found"]["elasticsearch ratings"] == 0
        assert set(after["retained"]) == {f"kafka {settings.kafka.ratings_topic}",
                                          f"kafka {settings.kafka.privacy_topic}", "champion model"}
        assert_ledger(settings, data_dir, es, erased=frozenset({ERASED}))       # film statistics exact without them

        code, status = cli_json(capsys, "privacy", "status")
        assert status["erased_in_champion"] == [ERASED] and status["retrain"]


def test_the_data_catalog_describes_every_field_and_is_current():
    from cinerec.core.catalog import STORES, mapped_types, markdown
    from cinerec.core.events import FIELDS
    from cinerec.core.privacy import PrivacyEvent
    from cinerec.platform.accounts import table_types
    from cinerec.search.indices import EVENT_INDICES

    described = {(s.kind, s.name): set(s.fields) for s in STORES}
    for index in ("films", "film_stats", "film_lists", "users", *EVENT_INDICES):
        missing = set(mapped_types(index)) - described[("index", index)]
        assert not missing, f"index {index}: {missing} not in the catalog"
    for table, columns in table_types().items():
        missing = set(columns) - described[("table", table)]
        assert not missing, f"table {table}: {missing} not in the catalog"
    assert set(FIELDS) <= described[("topic", "ratings")]
    assert set(PrivacyEvent.__dataclass_fields__) <= described[("topic", "users.privacy")]
    committed = (Path(__file__).resolve().parent.parent / "docs/data-catalog.md").read_text()
    assert committed == markdown(table_types()), "stale: run `cinerec privacy catalog > docs/data-catalog.md`"


def test_names_and_emails_of_the_synthetic_world_never_enter_events():
    from cinerec.simulator.world import generate

    world = generate(seed=3, users=40, movies=30, mean_ratings_per_user=10, min_ratings_per_user=3, latent_dim=4)
    personal = [str(v).encode() for v in (*world.users["name"], *world.users["email"])]
    for message in simulated_messages(world.tastes, seed=3, rate=0, count=2000, malformed=0.05):
        assert not any(value in message.value or value in message.key for value in personal), message.value


def test_secrets_are_masked_in_config_show(capsys, monkeypatch):
    secrets = {"CINEREC_WEB__SECRET_KEY": "web-secret-value", "CINEREC_API__API_KEYS": "key-one,key-two",
               "CINEREC_WEB__DATABASE_URL": "postgresql+psycopg://cinerec:db-password@db/cinerec",
               "CINEREC_ELASTICSEARCH__PASSWORD": "es-password-value"}
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    assert main(["config", "show", "--json"]) == 0
    shown = capsys.readouterr().out
    assert not any(part in shown for value in secrets.values() for part in value.split(",")), shown

"""Session fixtures: real local services on free ports in a temp directory, never the
developer's running instance; one topic pair per test; one local Spark session."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from cinerec.core.settings import Settings, load_settings
from cinerec.ops import services as svc
from cinerec.ops.services._process import free_port  # tests import it from here too


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Defaults from config/cinerec.toml, environment ignored, pointed at a temp data dir that
    Elasticsearch's own user can reach (pytest's temp root is private to root)."""
    data_dir = Path(tempfile.mkdtemp(prefix="cinerec-tests-"))
    data_dir.chmod(0o755)
    yield load_settings(env={}).replace(
        services__data_dir=str(data_dir),
        kafka__bootstrap_servers=f"127.0.0.1:{free_port()}",
        elasticsearch__url=f"http://127.0.0.1:{free_port()}",
        simulator__users=200, simulator__movies=300)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def services(base_settings):
    """The embedded Kafka broker and Elasticsearch node, up for the whole session."""
    report = svc.up(base_settings)
    yield report
    svc.down(base_settings)


@pytest.fixture
def settings(services, base_settings) -> Settings:
    """Settings whose ratings and dead-letter topics are this test's own, deleted afterwards."""
    name = f"ratings-{uuid.uuid4().hex[:8]}"
    own = base_settings.replace(kafka__ratings_topic=name, kafka__dlq_topic=f"{name}.dlq",
                                kafka__privacy_topic=f"{name}.privacy")
    svc.ensure_topics(own.kafka)
    yield own
    svc.delete_topics(own.kafka, [name, f"{name}.dlq", f"{name}.privacy"])


@pytest.fixture(scope="session")
def spark():
    """The one local[2] Spark session of the test run (the same builder the batch jobs use)."""
    from cinerec.platform.spark import spark_session
    from cinerec.streaming.source import kafka_jars

    session = spark_session(app="cinerec-tests", jars=kafka_jars(load_settings(env={}).services))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fresh_indices(services, base_settings):
    """An Elasticsearch without any films/users/ratings versions: each test module that
    builds indices starts from nothing, whatever an earlier module left behind."""
    from cinerec.platform.elasticsearch import connect

    es = connect(base_settings.elasticsearch)
    for pattern in ("films-v*", "film_stats-v*", "film_lists-v*", "users-v*", "ratings-v*"):
        for name in es.indices.get(index=pattern, expand_wildcards="all"):  # deletes need names
            es.indices.delete(index=name)
    return es

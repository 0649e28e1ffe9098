"""Local services: start/stop the embedded noida-db, check Kafka and Elasticsearch, create topics.

Embedded mode runs noida-db (a Kafka-protocol broker and an Elasticsearch 8 API in one
process) under ``<data_dir>/noida`` on the host and ports named by the Kafka and
Elasticsearch settings. External mode starts nothing and only checks the endpoints.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.settings import KafkaSettings, Settings
from search.client import cluster_health


class ServiceError(RuntimeError):
    """A service could not be started or is not healthy."""


def noida_dir(settings: Settings) -> Path:
    return Path(settings.services.data_dir) / "noida"


def up(settings: Settings) -> dict:
    """Starts the embedded services (if embedded), waits until both are healthy, creates topics."""
    if settings.services.mode == "embedded":
        _start_noida(settings)
    deadline = time.monotonic() + settings.services.start_timeout_s
    while True:
        report = status(settings)
        if report["kafka"]["healthy"] and report["elasticsearch"]["healthy"]:
            break
        if time.monotonic() > deadline:
            broken = [f"{name}: {report[name].get('error', 'unhealthy')}"
                      for name in ("kafka", "elasticsearch") if not report[name]["healthy"]]
            raise ServiceError(f"services not healthy after {settings.services.start_timeout_s:g}s "
                               f"({'; '.join(broken)})")
        time.sleep(0.5)
    report["topics"] = ensure_topics(settings.kafka)
    return report


def down(settings: Settings) -> dict:
    if settings.services.mode != "embedded":
        return {"mode": "external", "stopped": False, "note": "external services are not ours to stop"}
    result = _noida("down", "--data-dir", str(noida_dir(settings)))
    if result.returncode != 0:
        raise ServiceError(f"noida-db down failed: {_tail(result)}")
    return {"mode": "embedded", "stopped": True, "data_dir": str(noida_dir(settings))}


def status(settings: Settings) -> dict:
    return {"mode": settings.services.mode,
            "kafka": {"endpoint": settings.kafka.bootstrap_servers, **kafka_health(settings.kafka)},
            "elasticsearch": {"endpoint": settings.elasticsearch.url,
                              **cluster_health(settings.elasticsearch)}}


# -- Kafka ------------------------------------------------------------------------------------

def kafka_health(kafka: KafkaSettings, timeout_s: float = 3.0) -> dict:
    """A real round trip: produce a token to the health topic and consume it back."""
    try:
        require_kafka(kafka, timeout_s)
        _create(kafka, {kafka.health_topic: 1})
        token = uuid.uuid4().hex.encode()
        producer = Producer({**kafka.client_config(), "message.timeout.ms": int(timeout_s * 1000)})
        offsets: list[int] = []
        producer.produce(kafka.health_topic, value=token, partition=0,
                         on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()))
        producer.flush(timeout_s)
        if not offsets or offsets[0] < 0:
            return {"healthy": False, "error": "produce was not acknowledged"}
        consumer = Consumer({**kafka.client_config(), "group.id": "cinerec-health",
                             "enable.auto.commit": False})
        try:
            consumer.assign([TopicPartition(kafka.health_topic, 0, offsets[0])])
            message = consumer.poll(timeout_s)
        finally:
            consumer.close()
        if message is None or message.error() or message.value() != token:
            return {"healthy": False, "error": "produced token was not consumed back"}
        return {"healthy": True}
    except (KafkaException, ServiceError) as err:
        return {"healthy": False, "error": str(err)[:200]}


def require_kafka(kafka: KafkaSettings, timeout_s: float = 3.0) -> None:
    """Fails with one line when no broker answers a metadata request."""
    try:
        AdminClient({**kafka.client_config(), "socket.timeout.ms": int(timeout_s * 1000)}
                    ).list_topics(timeout=timeout_s)
    except KafkaException as err:
        raise ServiceError(f"Kafka is not reachable at {kafka.bootstrap_servers} "
                           f"({err.args[0].str()}); start it with `cinerec services up`") from None


def ensure_topics(kafka: KafkaSettings) -> dict[str, int]:
    """Creates ``ratings`` and ``ratings.dlq`` if missing; returns each topic's partition count."""
    wanted = {kafka.ratings_topic: kafka.partitions, kafka.dlq_topic: kafka.partitions}
    _create(kafka, wanted, replication=kafka.replication_factor)
    metadata = AdminClient(kafka.client_config()).list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in wanted}


def delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    admin = AdminClient(kafka.client_config())  # must outlive its futures
    for future in admin.delete_topics(names, operation_timeout=10).values():
        try:
            future.result(10)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def _create(kafka: KafkaSettings, partitions: dict[str, int], replication: int = 1) -> None:
    admin = AdminClient({**kafka.client_config(), "socket.timeout.ms": 5000})
    futures = admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=replication)
                                   for name, n in partitions.items()], request_timeout=10)
    for name, future in futures.items():
        try:
            future.result(15)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceError(f"cannot create topic {name}: {err.args[0].str()}") from None


# -- noida-db ---------------------------------------------------------------------------------

def _start_noida(settings: Settings) -> None:
    kafka_host, kafka_port = _host_port(settings.kafka.bootstrap_servers)
    es = urlparse(settings.elasticsearch.url)
    if "," in settings.kafka.bootstrap_servers or es.scheme != "http" or not es.port:
        raise ServiceError("embedded mode needs one Kafka host:port and an http://host:port "
                           "Elasticsearch URL; set services.mode = 'external' for anything else")
    if es.hostname != kafka_host:
        raise ServiceError(f"embedded mode serves Kafka and Elasticsearch on one host, "
                           f"got {kafka_host} and {es.hostname}")
    directory = noida_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    result = _noida("up", "--data-dir", str(directory), "--host", kafka_host,
                    "--only", "kafka,elasticsearch", "--kafka-port", str(kafka_port),
                    "--elasticsearch-port", str(es.port))
    if result.returncode != 0:
        raise ServiceError(f"noida-db did not start: {_tail(result)}")


def _noida(*args: str) -> subprocess.CompletedProcess:
    """Runs the noida-db binary shipped in the pinned PyPI package."""
    return subprocess.run([sys.executable, "-m", "noida_db.cli", *args], capture_output=True,
                          text=True, timeout=60)


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ServiceError(f"expected host:port, got {endpoint!r}")
    return host, int(port)


def _tail(result: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()
             if line.strip() and "GLIBC" not in line]  # the binary warns about an optional symbol
    return " | ".join(lines[-3:]) or f"exit code {result.returncode}"

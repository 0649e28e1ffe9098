"""Kafka as a client sees it: the produce/consume health round trip and topic management."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .errors import ServiceError
from core.settings import KafkaSettings


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
    """Creates the ratings, dead-letter, privacy and feedback topics if missing; returns each topic's
    partition count. Ratings and dead letters are kept ``kafka.retention_days``; the privacy topic
    is compacted (each user's latest privacy event, kept forever: ``core.privacy``)."""
    retention = {"retention.ms": str(kafka.retention_days * 86_400_000)}
    wanted = {kafka.ratings_topic: kafka.partitions, kafka.dlq_topic: kafka.partitions,
              kafka.privacy_topic: 1, kafka.feedback_topic: kafka.partitions}   # privacy events are rare: one
    # partition keeps the streaming job's per-batch Kafka tasks to what the ratings need
    _create(kafka, wanted, replication=kafka.replication_factor,
            configs={kafka.ratings_topic: retention, kafka.dlq_topic: retention, kafka.feedback_topic: retention,
                     kafka.privacy_topic: {"cleanup.policy": "compact", "retention.ms": "-1"}})
    admin, deadline = AdminClient(kafka.client_config()), time.monotonic() + 10
    while True:             # a topic just created can be missing from the next metadata answer
        metadata = admin.list_topics(timeout=10)
        if all(name in metadata.topics for name in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    missing = [name for name in wanted if name not in metadata.topics]
    if missing:
        raise ServiceError(f"topics {missing} were created but Kafka does not list them after 10 s")
    return {name: len(metadata.topics[name].partitions) for name in wanted}


def delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    admin = AdminClient(kafka.client_config())  # must outlive its futures
    for future in admin.delete_topics(names, operation_timeout=10).values():
        try:
            future.result(10)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def _create(kafka: KafkaSettings, partitions: dict[str, int], replication: int = 1,
            configs: dict[str, dict] | None = None) -> None:
    admin = AdminClient({**kafka.client_config(), "socket.timeout.ms": 5000})
    futures = admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=replication,
                                            config=(configs or {}).get(name, {}))
                                   for name, n in partitions.items()], request_timeout=10)
    for name, future in futures.items():
        try:
            future.result(15)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceError(f"cannot create topic {name}: {err.args[0].str()}") from None

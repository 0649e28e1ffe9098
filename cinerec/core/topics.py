"""Kafka topics as a client sees them: create the project's topics, the produce/consume health
round trip, and reading a topic back whole (end offsets, every message, counts per contract)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .errors import ServiceError
from .events import InvalidEvent, parse_event
from .settings import KafkaSettings


def kafka_health(kafka: KafkaSettings, timeout_s: float = 3.0) -> dict:
    """A real round trip: produce a token to the health topic and consume it back."""
    try:
        require_kafka(kafka, timeout_s)
        _create(kafka, {kafka.health_topic: 1}, replication=kafka.replication_factor)
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
    admin, deadline = AdminClient(kafka.client_config()), time.monotonic() + 30
    while True:             # a topic just created can be missing from the next metadata answer, or
        metadata = admin.list_topics(timeout=10)    # (on a cluster) have partitions still electing a leader
        missing = [name for name in wanted if not _settled(metadata.topics.get(name), kafka.replication_factor)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if missing:
        raise ServiceError(f"topics {missing} were created but Kafka does not list them, each partition with a "
                           f"leader and its replicas in sync, after 30 s")
    return {name: len(metadata.topics[name].partitions) for name in wanted}


def _settled(topic, replication: int) -> bool:
    """A listed topic whose every partition has a leader and ``replication`` replicas in sync."""
    return topic is not None and topic.error is None and all(
        p.leader >= 0 and len(p.isrs) >= min(replication, len(p.replicas)) for p in topic.partitions.values())


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


def end_offsets(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0,
                consumer: Consumer | None = None) -> dict[int, int]:
    """{partition: high watermark} of ``topic``."""
    partitions = AdminClient(kafka.client_config()).list_topics(topic, timeout=timeout_s)
    own = consumer is None
    consumer = consumer or Consumer({**kafka.client_config(), "group.id": f"cinerec-read-{uuid.uuid4().hex}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
                for p in sorted(partitions.topics[topic].partitions)}
    finally:
        if own:
            consumer.close()


def read_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0) -> list:
    """Every message now on ``topic``, from the first offset to the high watermark."""
    consumer = Consumer({**kafka.client_config(), "group.id": f"cinerec-read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = end_offsets(kafka, topic, timeout_s, consumer)
        ids = sorted(ends)
        consumer.assign([TopicPartition(topic, p, 0) for p in ids if ends[p] > 0])
        remaining = {p for p in ids if ends[p] > 0}
        messages, deadline = [], time.monotonic() + timeout_s
        while remaining:
            batch = consumer.consume(10_000, timeout=0.2)
            if batch:
                deadline = time.monotonic() + timeout_s
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: no message within {timeout_s}s with "
                                   f"partitions {sorted(remaining)} unfinished")
            for message in batch:
                if message.error():
                    raise RuntimeError(f"{topic}: {message.error().str()}")
                messages.append(message)
                if message.offset() >= ends[message.partition()] - 1:
                    remaining.discard(message.partition())
        return messages
    finally:
        consumer.close()


def count_events(kafka: KafkaSettings, topic: str) -> dict:
    """Counts per partition, and how many events pass the event contract (by reason if not)."""
    partitions: Counter = Counter()
    invalid: Counter = Counter()
    for message in read_topic(kafka, topic):
        partitions[message.partition()] += 1
        try:
            parse_event(message.value())
        except InvalidEvent as err:
            invalid[err.reason] += 1
    total = sum(partitions.values())
    return {"topic": topic, "total": total, "valid": total - sum(invalid.values()),
            "invalid": dict(invalid), "partitions": {str(p): n for p, n in sorted(partitions.items())}}

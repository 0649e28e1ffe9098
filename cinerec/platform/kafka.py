"""Kafka as the project's clients see it: the one factory of producers, consumers and admin
clients from settings, the project's topics (create them, the produce/consume health round trip,
read a topic back whole: end offsets, every message, counts per contract) and the privacy topic
(publish a choice, read every user's latest; its rules are ``core.privacy``'s)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cinerec.core.errors import ServiceError
from cinerec.core.events import InvalidEvent, parse_event
from cinerec.core.privacy import PrivacyBook, PrivacyEvent, parse_privacy_event, supersedes_choice
from cinerec.core.settings import KafkaSettings

BULK = {"batch.num.messages": 10_000, "queue.buffering.max.messages": 1_000_000}  # feeds at thousands/s


def new_producer(kafka: KafkaSettings, config: dict | None = None) -> Producer:
    """Every producer of the project: the connection and ``kafka.acks``/``kafka.linger_ms`` from
    settings, idempotent when every replica acknowledges; ``config`` adds or overrides librdkafka
    properties (``BULK`` for feeds, a delivery timeout for requests that wait)."""
    return Producer({**kafka.client_config(), "acks": kafka.acks, "linger.ms": kafka.linger_ms,
                     "enable.idempotence": kafka.acks == "all", **(config or {})})


def new_consumer(kafka: KafkaSettings, group: str, config: dict | None = None) -> Consumer:
    """Every consumer of the project: the connection from settings, the group, then ``config``."""
    return Consumer({**kafka.client_config(), "group.id": group, **(config or {})})


def new_admin(kafka: KafkaSettings, config: dict | None = None) -> AdminClient:
    return AdminClient({**kafka.client_config(), **(config or {})})


def broker_count(bootstrap_servers: str, timeout_s: float = 3.0) -> int:
    """Brokers a cluster knows of (0 while it does not answer, whatever the reason)."""
    try:
        return len(AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=timeout_s).brokers)
    except Exception:                   # noqa: BLE001 — not up yet
        return 0


def kafka_health(kafka: KafkaSettings, timeout_s: float = 3.0) -> dict:
    """A real round trip: produce a token to the health topic and consume it back."""
    try:
        require_kafka(kafka, timeout_s)
        _create(kafka, {kafka.health_topic: 1}, replication=kafka.replication_factor)
        token = uuid.uuid4().hex.encode()
        producer = new_producer(kafka, {"message.timeout.ms": int(timeout_s * 1000)})
        offsets: list[int | None] = []
        producer.produce(kafka.health_topic, value=token, partition=0,
                         on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()))
        producer.flush(timeout_s)
        if not offsets or offsets[0] is None or offsets[0] < 0:
            return {"healthy": False, "error": "produce was not acknowledged"}
        consumer = new_consumer(kafka, "cinerec-health", {"enable.auto.commit": False})
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
        new_admin(kafka, {"socket.timeout.ms": int(timeout_s * 1000)}
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
    admin, deadline = new_admin(kafka), time.monotonic() + 30
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
    admin = new_admin(kafka)  # must outlive its futures
    for future in admin.delete_topics(names, operation_timeout=10).values():
        try:
            future.result(10)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def _create(kafka: KafkaSettings, partitions: dict[str, int], replication: int = 1,
            configs: dict[str, dict] | None = None) -> None:
    admin = new_admin(kafka, {"socket.timeout.ms": 5000})
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
    partitions = new_admin(kafka).list_topics(topic, timeout=timeout_s)
    own = consumer is None
    consumer = consumer or new_consumer(kafka, f"cinerec-read-{uuid.uuid4().hex}")
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
                for p in sorted(partitions.topics[topic].partitions)}
    finally:
        if own:
            consumer.close()


def read_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0) -> list:
    """Every message now on ``topic``, from the first offset to the high watermark."""
    consumer = new_consumer(kafka, f"cinerec-read-{uuid.uuid4().hex}",
                            {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
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
                error = message.error()
                if error:
                    raise RuntimeError(f"{topic}: {error.str()}")
                messages.append(message)
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None      # a consumed message has both
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
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


# the privacy topic (its rules: core.privacy)

def publish_privacy(kafka: KafkaSettings, event: PrivacyEvent, producer=None, timeout_s: float = 5.0) -> None:
    """Publishes one privacy event and waits for the broker's acknowledgement (raises otherwise)."""
    producer = producer or new_producer(kafka, {"acks": "all", "enable.idempotence": True})
    errors: list = []
    producer.produce(kafka.privacy_topic, key=event.key, value=event.to_json(),
                     on_delivery=lambda err, msg: errors.append(err))
    left = producer.flush(timeout_s)
    if left or not errors or errors[0] is not None:
        raise KafkaException(errors[0] if errors and errors[0] else f"not acknowledged within {timeout_s:g} s")


def read_privacy(kafka: KafkaSettings, timeout_s: float = 10.0) -> dict[int, PrivacyEvent]:
    """Every user's latest privacy event, read from the privacy topic's start to its end."""
    latest: dict[int, PrivacyEvent] = {}
    for message in read_topic(kafka, kafka.privacy_topic, timeout_s):
        try:
            event = parse_privacy_event(message.value() or b"")
        except InvalidEvent:
            continue                              # the job dead-letters it; it changes nothing
        if supersedes_choice(latest.get(event.user_id), event):
            latest[event.user_id] = event
    return latest


def privacy_book(kafka: KafkaSettings, first_person_id: int) -> PrivacyBook:
    """The book as of now; a clear error when the privacy topic cannot be read (training without
    the list of erased users is not allowed)."""
    try:
        return PrivacyBook(read_privacy(kafka), first_person_id)
    except Exception as err:
        raise RuntimeError(f"cannot read the privacy topic {kafka.privacy_topic} at {kafka.bootstrap_servers} "
                           f"({err}): training and indexing must leave erased users out; start Kafka "
                           f"(`cinerec services up`)") from None

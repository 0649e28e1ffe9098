"""Reading a Kafka topic back, whole: end offsets and every message now on it."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from .settings import KafkaSettings


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

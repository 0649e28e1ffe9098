"""Test-side Kafka reading, independent of the code under test."""

import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient


def consume_all(kafka, topic):
    """An independent consumer: reads every partition to its end."""
    metadata = AdminClient(kafka.client_config()).list_topics(topic, timeout=10)
    consumer = Consumer({**kafka.client_config(), "group.id": "test-readback",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages, deadline = [], time.monotonic() + 30
    while len(messages) < sum(ends.values()):
        assert time.monotonic() < deadline, "consumer stalled before the end offsets"
        messages.extend(consumer.consume(5000, timeout=0.2))
    consumer.close()
    return messages

"""Reading a topic back: the check that published events really arrived."""

from __future__ import annotations

from collections import Counter

from core.events import InvalidEvent, parse_event
from core.settings import KafkaSettings
from core.topics import end_offsets, read_topic  # noqa: F401 - re-exported for the CLI and tests


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

"""A Spark streaming data source over Kafka in Python, for clusters without the Kafka connector.

Spark's native ``kafka`` format needs the spark-sql-kafka jar (``--packages``), which cannot be
fetched here; this source gives the same columns (key, value, topic, partition, offset,
timestamp, timestampType) through confluent-kafka. Offsets are plain ``{partition: offset}``
dicts that Spark stores in the query's checkpoint, so a restarted query resumes exactly where
the last committed micro-batch ended: nothing is skipped, nothing is read twice. Kafka's own
consumer-group offsets are not used.

Options: ``bootstrap.servers``, ``subscribe`` (one topic), ``startingOffsets``
(``earliest`` | ``latest``), ``maxOffsetsPerTrigger``, and any other ``kafka.*`` option passed
to the client without its prefix (security settings).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows, SupportsTriggerAvailableNow

SCHEMA = ("key binary, value binary, topic string, partition int, offset long, "
          "timestamp timestamp, timestampType int")
NAME = "cinerec_kafka"


@dataclass
class OffsetRange(InputPartition):
    topic: str
    partition: int
    start: int   # first offset to read
    until: int   # one past the last offset to read


class KafkaSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema) -> KafkaStreamReader:
        # Spark hands options over case-insensitively; keep them lower-case, like librdkafka's keys.
        return KafkaStreamReader({k.lower(): v for k, v in self.options.items()})


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: dict):
        self.options = options
        self.topic = options["subscribe"]
        self.client = {"bootstrap.servers": options["bootstrap.servers"], "log_level": 2,
                       **{k[len("kafka."):]: v for k, v in options.items() if k.startswith("kafka.")}}
        self.max_per_trigger = int(options.get("maxoffsetspertrigger", 0)) or None
        self.target: dict | None = None    # availableNow: the end offsets when the query started

    def prepareForTriggerAvailableNow(self) -> None:
        """availableNow reads up to the offsets of this moment, in batches of maxOffsetsPerTrigger,
        also after a restart that first re-runs an unfinished batch."""
        self.target = {str(p): high for p, (_, high) in self._watermarks().items()}

    # offsets: {"<partition>": next offset to read}
    def initialOffset(self) -> dict:
        low_high = self._watermarks()
        pick = 1 if self.options.get("startingoffsets", "earliest") == "latest" else 0
        return {str(p): bounds[pick] for p, bounds in low_high.items()}

    def latestOffset(self, start: dict, limit) -> dict:
        latest = self.target or {str(p): high for p, (_, high) in self._watermarks().items()}
        budget = None
        if isinstance(limit, ReadMaxRows):
            budget = limit.max_rows
        elif self.max_per_trigger and (self.target is not None or not isinstance(limit, ReadAllAvailable)):
            budget = self.max_per_trigger
        if budget is None:
            return {p: max(latest[p], start.get(p, 0)) for p in latest}
        end, share = {}, max(1, budget // max(1, len(latest)))
        for p, high in latest.items():
            begin = start.get(p, 0)
            end[p] = max(begin, min(high, begin + share))
        return end

    def getDefaultReadLimit(self):
        return ReadMaxRows(self.max_per_trigger) if self.max_per_trigger else ReadAllAvailable()

    def partitions(self, start: dict, end: dict) -> list[OffsetRange]:
        return [OffsetRange(self.topic, int(p), start.get(p, 0), until)
                for p, until in sorted(end.items(), key=lambda kv: int(kv[0])) if until > start.get(p, 0)]

    def read(self, partition: OffsetRange):
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self.client, "group.id": f"cinerec-spark-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            consumer.assign([TopicPartition(partition.topic, partition.partition, partition.start)])
            position = partition.start
            while position < partition.until:
                message = consumer.poll(10.0)
                if message is None:
                    raise TimeoutError(f"{partition.topic}[{partition.partition}] offset {position}: "
                                       f"no message within 10 s (until {partition.until})")
                if message.error():
                    raise RuntimeError(message.error().str())
                if message.offset() >= partition.until:
                    break
                kind, millis = message.timestamp()
                yield (message.key(), message.value(), message.topic(), message.partition(),
                       message.offset(), datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC),
                       kind)
                position = message.offset() + 1
        finally:
            consumer.close()

    def commit(self, end: dict) -> None:
        """Nothing to do: the offsets live in Spark's checkpoint, not in Kafka."""

    def _watermarks(self) -> dict[int, tuple[int, int]]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self.client, "group.id": f"cinerec-offsets-{uuid.uuid4().hex}"})
        try:
            metadata = consumer.list_topics(self.topic, timeout=10)
            partitions = sorted(metadata.topics[self.topic].partitions)
            return {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                    for p in partitions}
        finally:
            consumer.close()


def register(spark) -> None:
    spark.dataSource.register(KafkaSource)

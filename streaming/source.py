"""The rating stream as a Spark DataFrame: Spark's native ``kafka`` source when the connector is
on the classpath (production, ``--packages``), otherwise ``streaming.kafka_source``. Both give
the columns key, value, topic, partition, offset, timestamp, timestampType."""

from __future__ import annotations

from . import kafka_source
from core.settings import KafkaSettings


def rating_stream(spark, kafka: KafkaSettings, *, native: bool = False, topic: str | None = None,
                  starting_offsets: str = "earliest", max_offsets_per_trigger: int = 0):
    topic = topic or kafka.ratings_topic
    client = {k: str(v) for k, v in kafka.client_config().items()
              if k not in ("bootstrap.servers", "log_level")}
    if native:
        reader = (spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
                  .option("failOnDataLoss", "true"))
    else:
        kafka_source.register(spark)
        reader = spark.readStream.format(kafka_source.NAME).option("bootstrap.servers", kafka.bootstrap_servers)
    reader = reader.option("subscribe", topic).option("startingOffsets", starting_offsets)
    for key, value in client.items():
        reader = reader.option(f"kafka.{key}", value)
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()

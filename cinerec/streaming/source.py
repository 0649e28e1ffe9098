"""The rating stream as a Spark DataFrame, read by Spark's native ``kafka`` source
(``spark-sql-kafka-0-10`` at exactly Spark's version, on ``spark.jars`` from the engines folder
that ``make install`` fills). Columns: key, value, topic, partition, offset, timestamp,
timestampType. Offsets live in the query's checkpoint: a restarted query resumes exactly where
the last committed micro-batch ended; Kafka's consumer-group offsets are not used."""

from __future__ import annotations

from pathlib import Path

from cinerec.core.settings import KafkaSettings, ServicesSettings

_LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def kafka_jars(services: ServicesSettings) -> list[str]:
    """The connector's jars for ``spark.jars``; fails with one line when they were not fetched."""
    jars = sorted(str(p) for p in Path(services.engines_path(), "spark-jars").glob("*.jar"))
    if not any("spark-sql-kafka" in Path(j).name for j in jars):
        raise FileNotFoundError(f"Spark's Kafka connector is missing from {services.engines_path()}/spark-jars: "
                                f"run `make install`")
    return jars


def rating_stream(spark, kafka: KafkaSettings, *, topics: list[str] | None = None,
                  starting_offsets: str = "earliest", max_offsets_per_trigger: int = 0):
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
              .option("subscribe", ",".join(topics or [kafka.ratings_topic]))
              .option("startingOffsets", starting_offsets)
              .option("failOnDataLoss", "true"))
    for key, value in java_client_config(kafka).items():
        reader = reader.option(f"kafka.{key}", value)
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def java_client_config(kafka: KafkaSettings) -> dict[str, str]:
    """The security part of ``kafka.client_config()`` in the Java client's terms."""
    config = {"security.protocol": kafka.security_protocol}
    if kafka.sasl_mechanism:
        login = _LOGIN_MODULES[kafka.sasl_mechanism]
        config.update({"sasl.mechanism": kafka.sasl_mechanism,
                       "sasl.jaas.config": f'{login} required username="{kafka.sasl_username}" '
                                           f'password="{kafka.sasl_password}";'})
    return config

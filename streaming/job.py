"""The streaming query: Kafka ratings -> ``RatingProcessor`` once per micro-batch.

    rating_stream (native kafka or the Python source; offsets in the checkpoint)
        ─foreachBatch─▶ rows (key, value, partition, offset) ─▶ RatingProcessor.process(records, batch_id)
Spark re-runs an uncommitted batch with the same id after a crash; the processor makes that
re-run write the same values, so the effect on Elasticsearch is exactly once.
"""

from __future__ import annotations

from pathlib import Path

from .processor import RatingProcessor
from .source import rating_stream
from .validate import Record
from core.settings import KafkaSettings


def start(spark, kafka: KafkaSettings, processor: RatingProcessor, *, checkpoint: Path,
          trigger_ms: int = 500, available_now: bool = False, native: bool = False,
          max_offsets_per_trigger: int = 0, on_batch=None):
    """Starts the query and returns it (``query.awaitTermination()`` / ``query.stop()``)."""
    def process(frame, batch_id: int) -> None:
        rows = frame.select("key", "value", "partition", "offset").collect()   # (key, value, partition, offset)
        records = [Record(bytes(r.value or b""), r.partition, r.offset, bytes(r.key) if r.key is not None else None)
                   for r in rows]
        report = processor.process(records, batch_id)
        if on_batch:
            on_batch(report)

    writer = (rating_stream(spark, kafka, native=native, max_offsets_per_trigger=max_offsets_per_trigger)
              .writeStream.foreachBatch(process).option("checkpointLocation", str(checkpoint))
              .queryName("cinerec-ratings"))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_ms} milliseconds")
    return writer.start()

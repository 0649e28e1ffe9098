"""The job's Prometheus metrics from a query progress (a progress written here: wiring only)."""

import os

from prometheus_client import REGISTRY

from streaming.metrics import observe_progress, tree_rss_bytes


def test_lag_per_partition_is_end_offset_minus_what_the_query_read():
    progress = {"inputRowsPerSecond": 12.5, "durationMs": {"addBatch": 1250, "queryPlanning": 40},
                "sources": [{"endOffset": {"ratings": {"0": 90, "1": 100}}}]}       # as Spark's Kafka source says
    observe_progress(progress, {0: 100, 1: 100, 2: 7}, "ratings")
    lag = {p: REGISTRY.get_sample_value("cinerec_stream_input_lag", {"partition": p}) for p in "012"}
    assert lag == {"0": 10.0, "1": 0.0, "2": 7.0}
    assert REGISTRY.get_sample_value("cinerec_stream_input_rows_per_second") == 12.5
    assert REGISTRY.get_sample_value("cinerec_stream_memory_bytes") > 0
    assert REGISTRY.get_sample_value("cinerec_stream_trigger_phase_seconds", {"phase": "addBatch"}) == 1.25


def test_tree_memory_covers_the_process_and_its_children():
    assert tree_rss_bytes(os.getpid()) > 10 * 2**20
    assert tree_rss_bytes(1) >= tree_rss_bytes(os.getpid())

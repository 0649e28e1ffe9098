"""The job's Prometheus metrics from a query progress (a progress written here: wiring only)."""

import os

from prometheus_client import REGISTRY

from cinerec.streaming.metrics import observe_progress, tree_rss_bytes


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


def test_a_batch_line_names_sparks_phases_the_state_operator_and_the_queue_wait():
    from cinerec.streaming.metrics import trigger_figures

    progress = {"timestamp": "2026-12-06T08:00:01.500Z", "durationMs": {"addBatch": 700, "walCommit": 40},
                "stateOperators": [{"numRowsUpdated": 12, "commitTimeMs": 110, "allUpdatesTimeMs": 300,
                                    "customMetrics": {"rocksdbGetCount": 24, "rocksdbPutCount": 0, "other": 1}}]}
    oldest, newest = 1_796_544_000_000, 1_796_544_001_250               # 08:00:00.000 and 08:00:01.250 UTC
    figures = trigger_figures(progress, [oldest, newest])
    assert figures["spark_s"] == {"addBatch": 0.7, "walCommit": 0.04}
    assert figures["state_operator"] == {"numRowsUpdated": 12, "allUpdatesTimeMs": 300, "commitTimeMs": 110,
                                         "rocksdbGetCount": 24}
    assert figures["queue_wait_s"] == {"oldest": 1.5, "newest": 0.25}
    assert "queue_wait_s" not in trigger_figures(progress)

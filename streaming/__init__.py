"""Spark Structured Streaming job: Kafka source, validation, per-user fold-in, Elasticsearch sink.

Not built yet (issue: streaming). Imports ``core`` and ``search`` only.
"""

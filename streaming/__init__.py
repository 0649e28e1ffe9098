"""Spark Structured Streaming job: Kafka source, validation, per-user fold-in, Elasticsearch sink.

Built so far: the rating stream (``source.rating_stream``) — Spark's native ``kafka`` format
when the connector is on the classpath, otherwise the Python data source in ``kafka_source``
with its offsets in the query checkpoint — and the validation step (``validate``: accepted
events, dead letters with reason and source offset, duplicates), and per-user state
(``state``: order-independent re-ratings, film-statistics deltas, exact fold-in). The Spark job
that wires them to Elasticsearch is the streaming issue's remaining work. Imports ``core`` and ``search`` only.
"""

"""Spark Structured Streaming job: Kafka ratings -> validation -> keyed state -> fold-in -> Elasticsearch.

    source.py                     the rating stream (Spark's native kafka source, jars from .engines;
                                  offsets in the query checkpoint)
    validate.py                   records -> accepted events and dead letters (reason, source offset)
    state.py                      the state rules: latest rating wins, film totals, exact fold-in
    stateful.py                   keyed state in Spark's state store (transformWithStateInPandas)
    processor.py                  per micro-batch: fold-in and the Elasticsearch / DLQ writes
    job.py                        the query that wires them; metrics.py its Prometheus metrics
    online.py                     online metrics and drift of the closed loop (``cinerec online``)
The job as a program (champion, training data, supervision) is ``ops/stream.py``; never imports
``batch``. Its floor: ``cinerec.FLOORS`` (tests/test_imports.py).
"""

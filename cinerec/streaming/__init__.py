"""Spark Structured Streaming job: Kafka ratings -> validation -> keyed state -> fold-in -> Elasticsearch.

    source.py                     the rating stream (Spark's native kafka source, jars from .engines;
                                  offsets in the query checkpoint)
    validate.py                   records -> accepted events and dead letters (reason, source offset)
    state.py                      the state rules: latest rating wins, film totals, exact fold-in
    stateful.py                   keyed state in Spark's state store (transformWithStateInPandas)
    processor.py                  per micro-batch: fold-in and the Elasticsearch / DLQ writes
    job.py                        the query that wires them; metrics.py its Prometheus metrics
    app.py                        the job as a program: champion, indices, clocks, supervision
    quality.py                    fold-in vs. retrain (``cinerec evaluate --streaming``)
    online.py                     online metrics and drift of the closed loop (``cinerec online``)
Imports ``core`` and ``search``; ``batch`` only where the champion and its training data are loaded
(``app.py``) and for the quality evaluation (tests/test_imports.py).
"""

"""Operating Cinerec on a machine: what runs the components together rather than being one of them.

    services/      the embedded Kafka broker and Elasticsearch node (start, stop, health), the local cluster
    stream.py      the streaming job as a program: champion, training data, indices, clocks, supervision
    streaming_quality.py  fold-in vs. retrain (``cinerec evaluate --streaming``)
    monitoring.py  Prometheus and Alertmanager with local copies of deployment/prometheus
    demo.py        `cinerec demo`: every part as a child process; demo_loop.py its operations timeline
    indexing.py    the served indices of a registered model (its data plus what the stream has taken)
    canary.py      start, look at and decide a canary; pipeline.py the retraining pipeline (Dagster)
    online.py      the online-metrics consumer as a program; serve.py the API under gunicorn
    privacy.py     the audit of a person's data across every store
    kibana.py      the saved objects into a Kibana
    bench.py       the benchmarks
Imports every floor but ``cli`` (``cinerec.FLOORS``, tests/test_imports.py).
"""

"""Pure logic shared by every component: settings, the event contract, datasets.

Never imports Spark, Elasticsearch, MLflow or Flask, nor another project package; the Kafka client
only in ``topics.py`` (the project's topics: create, check, read back) and ``privacy.py`` (publishing privacy events).
Checked by tests/test_imports.py.
"""

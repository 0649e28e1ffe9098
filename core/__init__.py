"""Pure logic shared by every component: settings, the event contract, datasets.

Never imports Spark, Kafka, Elasticsearch, MLflow or Flask.
"""

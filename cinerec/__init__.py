"""Cinerec: a real-time streaming movie recommender on Kafka, Spark and Elasticsearch.

The floors, each importing only the ones beneath it (``tests/test_imports.py`` holds them; the
documentation draws the picture from the same ``FLOORS``)::

    cli                         parses arguments, prints
    ops                         assembles: services, demo, pipeline, benchmarks, privacy
    api  streaming  batch       the web API and app, the streaming job, training and evaluation
    search  simulator           Elasticsearch documents and queries; synthetic users
    platform                    one client per outside system: Kafka, Elasticsearch, MLflow,
                                Spark, the account database
    core                        pure rules and data types: events, privacy, fold-in, metrics
"""

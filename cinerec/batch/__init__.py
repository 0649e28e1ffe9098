"""Batch side: MovieLens loaders, integrity checks, dataset storage, Spark preprocessing, recommenders,
evaluation, training and tuning, the MLflow registry, index building. Imports ``core`` and ``search``
(rules checked by tests/test_imports.py)."""

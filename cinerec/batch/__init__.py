"""Batch side: MovieLens loaders, integrity checks, dataset storage, Spark preprocessing, recommenders,
evaluation, training and tuning, index building. Its floor: ``cinerec.FLOORS`` (tests/test_imports.py)."""

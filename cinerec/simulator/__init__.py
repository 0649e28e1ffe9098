"""Synthetic world, rate-controlled event producer, MovieLens replay. Its floor:
``cinerec.FLOORS`` (tests/test_imports.py)."""

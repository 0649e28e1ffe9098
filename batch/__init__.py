"""Batch side: MovieLens loaders, integrity checks, dataset storage (later: Spark training)."""

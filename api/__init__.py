"""Flask API: title queries, also-watched, similar films, per-user recommendations, ratings,
health, Prometheus metrics and an OpenAPI document. Imports ``core`` and ``search`` only."""

from .app import create_app

__all__ = ["create_app"]

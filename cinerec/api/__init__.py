"""Flask API: title queries, also-watched, similar films, per-user recommendations, ratings,
health, Prometheus metrics, an OpenAPI document, the Alertmanager webhook; ``api/web``: the people-facing
pages (nothing else imports them); ``privacy.py``: a person's data rights, shared with ``cinerec privacy``.
Its floor: ``cinerec.FLOORS`` (tests/test_imports.py)."""

from .app import create_app

__all__ = ["create_app"]

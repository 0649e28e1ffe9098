"""Flask app factory: clients per app (created lazily), JSON errors, metrics hooks.

Errors are JSON ``{"error": message, ...}``: 400 bad parameters, 404 unknown title/film/user,
503 when Elasticsearch or Kafka is down, and a 500 without a traceback for anything else.
"""

from __future__ import annotations

import logging
from functools import cached_property

from confluent_kafka import KafkaException, Producer
from elasticsearch import exceptions as es_errors
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from . import metrics
from core.settings import Settings, load_settings
from search.client import connect

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on: status, message and optional extra fields."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class Clients:
    """Elasticsearch and Kafka clients of one app, created on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def es(self):
        return connect(self.settings.elasticsearch)

    @cached_property
    def producer(self) -> Producer:
        kafka = self.settings.kafka
        return Producer({**kafka.client_config(), "acks": kafka.acks, "linger.ms": 0,
                         "message.timeout.ms": 5000, "enable.idempotence": kafka.acks == "all"})


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    settings = settings or load_settings()
    app.config["CINEREC"] = settings
    app.extensions["cinerec"] = Clients(settings)

    from .openapi import bp as openapi_bp
    from .routes import bp as routes_bp

    app.register_blueprint(routes_bp)
    app.register_blueprint(openapi_bp)
    metrics.install(app)

    @app.errorhandler(ApiError)
    def api_error(err: ApiError):
        return jsonify({"error": err.message, **err.extra}), err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return jsonify({"error": err.description or err.name}), err.code

    @app.errorhandler(es_errors.ConnectionError)
    @app.errorhandler(es_errors.ConnectionTimeout)
    def search_down(err):
        return jsonify({"error": "search is unavailable", "detail": str(err)[:200]}), 503

    @app.errorhandler(es_errors.NotFoundError)
    def index_missing(err):
        return jsonify({"error": "no index yet: run `cinerec index`", "detail": str(err)[:200]}), 503

    @app.errorhandler(KafkaException)
    def kafka_down(err):
        return jsonify({"error": "event log is unavailable", "detail": str(err)[:200]}), 503

    @app.errorhandler(Exception)
    def unexpected(err):
        log.exception("unhandled error")
        return jsonify({"error": "internal error"}), 500

    return app


def clients() -> Clients:
    from flask import current_app
    return current_app.extensions["cinerec"]

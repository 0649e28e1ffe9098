"""The API's errors: every one is JSON ``{"error": message, ...}`` with a status the OpenAPI
document names for its route.

    400 bad parameters or body   401/403 no or unknown API key   404 unknown title/film/user
    405 wrong method (+ Allow)   413/414 body or query too large  429 too fast (+ Retry-After)
    503 Elasticsearch or Kafka unavailable (+ Retry-After)        500 anything else, no traceback
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from elasticsearch import exceptions as es_errors
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)
UNAVAILABLE_RETRY_S = "5"


class ApiError(Exception):
    """An error the client can act on: status, message, optional extra fields and headers."""

    def __init__(self, status: int, message: str, *, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers or {}, extra


def install(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(err: ApiError):
        return jsonify({"error": err.message, **err.extra}), err.status, err.headers

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        headers = ({"Allow": ", ".join(sorted(err.valid_methods))}
                   if isinstance(err, MethodNotAllowed) and err.valid_methods is not None else {})
        return jsonify({"error": err.description or err.name}), err.code, headers

    @app.errorhandler(es_errors.ConnectionError)
    @app.errorhandler(es_errors.ConnectionTimeout)
    def search_down(err):
        return unavailable("search is unavailable", err)

    @app.errorhandler(es_errors.ApiError)
    def search_refused(err: es_errors.ApiError):
        if err.meta.status == 404:
            return unavailable("no index yet: run `cinerec index`", err)
        if err.meta.status in (429, 502, 503, 504):           # a node starting, shards recovering
            return unavailable("search is unavailable", err)
        return unexpected(err)

    @app.errorhandler(KafkaException)
    def kafka_down(err):
        return unavailable("event log is unavailable", err)

    @app.errorhandler(Exception)
    def unexpected(err):
        log.exception("unhandled error")
        return jsonify({"error": "internal error"}), 500


def unavailable(message: str, err: Exception):
    return (jsonify({"error": message, "detail": str(err)[:200]}), 503,
            {"Retry-After": UNAVAILABLE_RETRY_S})

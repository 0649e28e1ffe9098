"""OpenAPI 3 document (``/openapi.json``) and a plain docs page (``/docs``), from one table.

The document is the API's contract: every parameter's type and range, every status code and
content type a route returns. Tests check that it lists exactly the routes the app serves and
run schemathesis against the running API with it.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, current_app, jsonify

from cinerec.core.events import MAX_ID

from . import bodies
from .guard import KEY_HEADER
from .routes import GENRE_MAX, GENRES_MAX, TITLE_MAX, YEAR_MAX, YEAR_MIN

bp = Blueprint("openapi", __name__)

JSON, TEXT, HTML = "application/json", "text/plain", "text/html"
TITLE = {"type": "string", "minLength": 1, "maxLength": TITLE_MAX, "pattern": r"\S"}
YEAR = {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                               "schema": {"type": "integer"}}}


def _error(description: str, **headers) -> dict:
    response = {"description": description,
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {**response, "headers": headers} if headers else response


BAD = _error("bad parameters, with a message")
MISSING = _error("unknown film, user or title")
TOO_LONG = _error("query string longer than api.max_query_bytes")
UNAVAILABLE = _error("Elasticsearch or Kafka is unavailable (or no index was built yet)", **RETRY_AFTER)
READ_ERRORS = {"400": BAD, "414": TOO_LONG, "503": UNAVAILABLE}


def _ok(schema: str, content_type: str = JSON) -> dict:
    body = {"schema": {"$ref": f"#/components/schemas/{schema}"}} if content_type == JSON else {
        "schema": {"type": "string"}}
    return {"200": {"description": "ok", "content": {content_type: body}}}


def _id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _query(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _k() -> dict:
    api = current_app.config["CINEREC"].api
    return _query("k", f"how many results (default {api.default_k})",
                  {"type": "integer", "minimum": 1, "maximum": api.max_k})


GENRES = {"name": "genre", "in": "query", "style": "form", "explode": True, "description":
          "only these genres (repeatable)",
          "schema": {"type": "array", "maxItems": GENRES_MAX, "items": {"type": "string", "maxLength": GENRE_MAX}}}


def routes() -> list[tuple[str, str, str, list, dict]]:
    """(path, method, summary, parameters, responses) of every route."""
    return [
        ("/films", "get", "Find films by title: exact, as-you-type prefix, fuzzy; 'Heat (1995)' picks the year",
         [_query("q", "title text", TITLE, required=True), _k()], {**_ok("Search"), **READ_ERRORS}),
        ("/films/trending", "get", "Films rated most in the last trending window (streaming.trending_window_s)",
         [_k(), GENRES], {**_ok("Results"), **READ_ERRORS}),
        ("/films/{movie_id}", "get", "One film", [_id("movie_id")],
         {**_ok("Film"), "404": MISSING, "503": UNAVAILABLE}),
        ("/films/{movie_id}/also-watched", "get", "Users who liked this film also liked",
         [_id("movie_id"), _k()], {**_ok("FilmResults"), "404": MISSING, **READ_ERRORS}),
        ("/films/{movie_id}/similar", "get", "Films with the nearest item vectors",
         [_id("movie_id"), _k()], {**_ok("FilmResults"), "404": MISSING, **READ_ERRORS}),
        ("/recommendations", "get", "What people who watched this title also liked",
         [_query("title", "film title, optionally with '(year)'", TITLE, required=True), _k()],
         {**_ok("FilmResults"), "404": MISSING, **READ_ERRORS}),
        ("/users/{user_id}/recommendations", "get",
         "Recommendations for a user (films they rated excluded); based_on: rating count, newest rating "
         "time, model version",
         [_id("user_id"), _k(), GENRES, _query("year_from", "earliest year", YEAR),
          _query("year_to", "latest year", YEAR)], {**_ok("UserResults"), "404": MISSING, **READ_ERRORS}),
        ("/ratings", "post", f"Submit a rating (needs an API key in {KEY_HEADER}); published to Kafka",
         [], {"202": {"description": "accepted and published",
                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
              "400": BAD, "401": _error("no API key"), "403": _error("an API key that may not write"),
              "413": _error("body larger than api.max_body_bytes"), "414": TOO_LONG,
              "429": _error("more writes per second than api.write_rate_per_s", **RETRY_AFTER),
              "503": UNAVAILABLE}),
        ("/ops/alerts", "post", "Alertmanager webhook (API key as Authorization: Bearer): firing alerts labelled "
         "action=retrain start the retraining pipeline",
         [], {"202": {"description": "whether a retraining started",
                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/Retraining"}}}},
              "400": BAD, "401": _error("no API key"), "403": _error("an API key that may not write"),
              "413": _error(f"body larger than {bodies.ALERTS_MAX_BYTES} bytes (the largest the schema allows)"),
              "414": TOO_LONG,
              "429": _error("more writes per second than api.write_rate_per_s", **RETRY_AFTER)}),
        ("/health", "get", "Kafka, Elasticsearch and model status", [],
         {**_ok("Health"), "503": {"description": "a dependency is down",
                                   "content": {JSON: {"schema": {"$ref": "#/components/schemas/Health"}}}}}),
        ("/metrics", "get", "Prometheus metrics (text exposition format)", [], _ok("", TEXT)),
        ("/openapi.json", "get", "This document", [], {"200": {"description": "ok", "content": {
            JSON: {"schema": {"type": "object"}}}}}),
        ("/docs", "get", "Human-readable API documentation", [], _ok("", HTML)),
    ]


RATING_BODY = {"required": True, "content": {JSON: {"schema": bodies.RATING}}}
ALERTS_BODY = {"required": True, "content": {JSON: {"schema": bodies.ALERTS}}}

FILM: dict[str, Any] = {"type": "object", "properties": {"movie_id": {"type": "integer"}, "title": {"type": "string"},
                                                         "year": {"type": ["integer", "null"]}}}
RESULT = {"type": "object", "properties": {**FILM["properties"], "reason": {"type": "string"}}}
SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Film": FILM,
    "Results": {"type": "object", "required": ["results"],
                "properties": {"results": {"type": "array", "items": RESULT}}},
    "Search": {"type": "object", "required": ["query", "results"],
               "properties": {"query": {"type": "string"}, "results": {"type": "array", "items": RESULT}}},
    "FilmResults": {"type": "object", "required": ["film", "results"],
                    "properties": {"film": FILM, "results": {"type": "array", "items": RESULT}}},
    "UserResults": {"type": "object", "required": ["user_id", "based_on", "results"],
                    "properties": {"user_id": {"type": "integer"}, "based_on": {"type": "object"},
                                   "variant": {"type": "string", "enum": ["champion", "challenger"]},
                                   "request_id": {"type": "string"},
                                   "results": {"type": "array", "items": RESULT}}},
    "Accepted": {"type": "object", "required": ["event_id", "status"],
                 "properties": {"event_id": {"type": "string", "format": "uuid"}, "status": {"type": "string"}}},
    "Retraining": {"type": "object", "required": ["retraining", "reason"],
                   "properties": {"retraining": {"type": "boolean"}, "reason": {"type": "string"},
                                  "pid": {"type": ["integer", "null"]}}},
    "Health": {"type": "object", "required": ["healthy"], "properties": {"healthy": {"type": "boolean"}}},
}


def longest_query() -> int:
    """Bytes of the longest query string the document allows on any route: every character of a
    string percent-encoded from 4 UTF-8 bytes (12), each repeatable parameter at its most items.
    ``api.max_query_bytes`` sits above it (a test checks), so no valid query is refused as too long."""
    def longest(parameter: dict) -> int:
        schema = parameter["schema"]
        item = schema.get("items", schema)
        value = 12 * item["maxLength"] if item["type"] == "string" else len(str(item["maximum"]))
        return schema.get("maxItems", 1) * (len(parameter["name"]) + 2 + value)
    return max(sum(longest(p) for p in parameters if p["in"] == "query")
               for _, _, _, parameters, _ in routes())


def document() -> dict:
    paths: dict = {}
    for path, method, summary, parameters, responses in routes():
        operation = {"summary": summary, "parameters": parameters, "responses": responses}
        if method == "post":
            operation["requestBody"] = ALERTS_BODY if path == "/ops/alerts" else RATING_BODY
            operation["security"] = [{"apiKey": []}]
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cinerec API", "version": "0.2.0",
                 "description": "Real-time movie recommendations: titles, also-watched, per-user lists. "
                                "Every error is JSON {\"error\": message}; a wrong method is 405 with Allow."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": KEY_HEADER}}},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/docs")
def docs():
    rows = "".join(f"<tr><td><code>{m.upper()}</code></td><td><code>{html.escape(p)}</code></td>"
                   f"<td>{html.escape(s)}</td></tr>" for p, m, s, _, _ in routes())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Cinerec API</title></head><body>"
            f"<h1>Cinerec API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
            f"<table>{rows}</table></body></html>")

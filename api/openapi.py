"""OpenAPI 3 document (``/openapi.json``) and a plain docs page (``/docs``), from one table.

A test checks that the document lists exactly the routes the app serves.
"""

from __future__ import annotations

import html

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

K = {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "how many results"}
ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
LIST = {"description": "results with reasons",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Results"}}}}


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _query(name: str, description: str, required: bool = False, kind: str = "string") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}, "description": description}


# (path, method, summary, parameters, extra responses)
ROUTES = [
    ("/films", "get", "Find films by title: exact, as-you-type prefix, fuzzy; 'Heat (1995)' picks the year",
     [_query("q", "title text", True), K], {"400": ERROR}),
    ("/films/trending", "get", "Films rated most in the last trending window (streaming.trending_window_s)",
     [K, _query("genre", "only these genres (repeatable)")], {"400": ERROR}),
    ("/films/{movie_id}", "get", "One film", [_path_param("movie_id")], {"404": ERROR}),
    ("/films/{movie_id}/also-watched", "get", "Users who liked this film also liked",
     [_path_param("movie_id"), K], {"404": ERROR}),
    ("/films/{movie_id}/similar", "get", "Films with the nearest item vectors", [_path_param("movie_id"), K],
     {"404": ERROR}),
    ("/recommendations", "get", "What people who watched this title also liked",
     [_query("title", "film title, optionally with '(year)'", True), K], {"400": ERROR, "404": ERROR}),
    ("/users/{user_id}/recommendations", "get", ("Recommendations for a user (films they rated excluded); "
                                           "based_on: rating count, newest rating time, model version"),
     [_path_param("user_id"), K, _query("genre", "only these genres (repeatable)"),
      _query("year_from", "earliest year", kind="integer"), _query("year_to", "latest year", kind="integer")],
     {"400": ERROR, "404": ERROR}),
    ("/ratings", "post", "Submit a rating; published to Kafka", [], {"400": ERROR, "503": ERROR}),
    ("/health", "get", "Kafka, Elasticsearch and model status", [], {"503": ERROR}),
    ("/metrics", "get", "Prometheus metrics", [], {}),
    ("/openapi.json", "get", "This document", [], {}),
    ("/docs", "get", "Human-readable API documentation", [], {}),
]

RATING_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["user_id", "movie_id", "rating"],
    "properties": {"user_id": {"type": "integer", "minimum": 1}, "movie_id": {"type": "integer", "minimum": 1},
                   "rating": {"type": "number", "enum": [x / 2 for x in range(1, 11)]},
                   "ts": {"type": "integer", "description": "event time, epoch ms (default: now)"}}}}}}


def document() -> dict:
    paths: dict = {}
    for path, method, summary, parameters, responses in ROUTES:
        ok = {"202": {"description": "accepted"}} if method == "post" else {"200": LIST}
        operation = {"summary": summary, "parameters": parameters, "responses": {**ok, **responses}}
        if method == "post":
            operation["requestBody"] = RATING_BODY
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Cinerec API", "version": "0.1.0",
                 "description": "Real-time movie recommendations: titles, also-watched, per-user lists."},
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Results": {"type": "object", "properties": {"results": {"type": "array", "items": {
                "type": "object", "properties": {"movie_id": {"type": "integer"}, "title": {"type": "string"},
                                                 "year": {"type": "integer", "nullable": True},
                                                 "reason": {"type": "string"}}}}}}}},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/docs")
def docs():
    rows = "".join(f"<tr><td><code>{m.upper()}</code></td><td><code>{html.escape(p)}</code></td>"
                   f"<td>{html.escape(s)}</td></tr>" for p, m, s, _, _ in ROUTES)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Cinerec API</title></head><body>"
            f"<h1>Cinerec API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
            f"<table>{rows}</table></body></html>")

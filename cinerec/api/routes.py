"""The API's routes: films, recommendations, ratings, health, metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException
from flask import Blueprint, Response, current_app, jsonify, request

from cinerec.core.canary import in_canary
from cinerec.core.settings import as_env
from cinerec.platform.elasticsearch import cluster_health
from cinerec.search import canary, queries
from cinerec.search.indices import versioned_name

from . import metrics
from .bodies import alerts_error
from .clients import clients
from .errors import ApiError
from .guard import writer
from .ratings import publish_ratings

bp = Blueprint("api", __name__)
TITLE_MAX = 200                 # characters of a title query
GENRES_MAX, GENRE_MAX = 10, 40  # genre filters per request, characters of one
YEAR_MIN, YEAR_MAX = 1800, 2100


# -- films ------------------------------------------------------------------------------------

@bp.get("/films")
def search_films():
    text = _required("q")
    return jsonify({"query": text, "results": clients().films.find_titles(text, size=_k())})


@bp.get("/films/trending")
def trending_films():
    genres = _genres()
    return jsonify({"results": queries.trending(clients().es, size=_k(), genres=genres)})


@bp.get("/films/<id:movie_id>")
def film(movie_id: int):
    return jsonify(_film_or_404(movie_id))


@bp.get("/films/<id:movie_id>/also-watched")
def also_watched(movie_id: int):
    target = _film_or_404(movie_id)
    return jsonify({"film": target, "results": clients().films.also_watched_or_popular(movie_id, size=_k())})


@bp.get("/films/<id:movie_id>/similar")
def similar(movie_id: int):
    target = _film_or_404(movie_id)
    return jsonify({"film": target, "results": queries.similar_films(clients().es, movie_id, size=_k())})


@bp.get("/recommendations")
def recommendations_by_title():
    """The seeds' query: a title in, what people who watched it also liked out."""
    title, films = _required("title"), clients().films
    target = films.film_by_title(title)        # exact, else in other letter case; no search
    if target is None:
        matches = films.find_titles(title, size=5)
        suggestions = [f"{m['title']} ({m['year']})" if m.get("year") else m["title"] for m in matches]
        raise ApiError(404, f"no film titled {title!r}", suggestions=suggestions)
    results = films.also_watched_or_popular(target["movie_id"], size=_k())
    return jsonify({"film": target, "results": results})


# -- users ------------------------------------------------------------------------------------

CANARY_CHECK_S = 2.0

@bp.get("/users/<id:user_id>/recommendations")
def user_recommendations(user_id: int):
    """The champion's recommendations, or during a canary the challenger's for the users it draws
    (``core.canary``; its own index version). ``variant`` and ``request_id`` go into the feedback
    events of whoever shows the list."""
    es, variant, version = clients().es, "champion", None
    genres = _genres()
    years = (_year("year_from"), _year("year_to"))
    canary = canary_state()
    if canary and in_canary(user_id, canary["fraction"], canary["salt"]):
        variant, version = "challenger", canary["version"]
    try:
        user = queries.get_user(es, user_id, index=versioned_name(queries.USERS, version) if version else queries.USERS,
                                fields=queries.RECOMMENDING)
        if user is None and version:                         # not in the challenger's index: the champion serves
            variant, version = "champion", None
            user = queries.get_user(es, user_id, fields=queries.RECOMMENDING)
        if user is None:
            raise ApiError(404, f"unknown user {user_id}")
        results = clients().films.recommend_for_user(user, size=_k(), genres=genres, years=years,
                                                     films=versioned_name(queries.FILMS, version) if version else None)
    except Exception:
        metrics.VARIANT_REQUESTS.labels(variant, "error").inc()
        raise
    metrics.VARIANT_REQUESTS.labels(variant, "ok").inc()
    based_on = {"ratings": user.get("rating_count"), "last_rating_ts": user.get("last_ts"),
                "model_version": user.get("model_version")}
    return jsonify({"user_id": user_id, "based_on": based_on, "results": results, "variant": variant,
                    "request_id": str(uuid.uuid4())})


def canary_state() -> dict | None:
    """The running canary, read at most every ``CANARY_CHECK_S`` per process."""
    cached = current_app.extensions.setdefault("cinerec.canary", {"at": 0.0, "doc": None})
    if time.monotonic() - cached["at"] > CANARY_CHECK_S:
        try:
            cached["doc"] = canary.running(clients().es)
        except Exception:  # noqa: BLE001 - no canary index yet, or ES away: serve the champion
            cached["doc"] = None
        cached["at"] = time.monotonic()
    return cached["doc"]


# -- ratings ----------------------------------------------------------------------------------

@bp.post("/ratings")
@writer
def post_rating():
    """Validates a rating against the event contract (``core.events.client_event``) and publishes
    it; 202 with its event id."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object with user_id, movie_id and rating")
    (event,) = publish_ratings([body])
    return jsonify({"event_id": event.event_id, "status": "accepted"}), 202


# -- operations -------------------------------------------------------------------------------

@bp.get("/health")
def health():
    settings = current_app.config["CINEREC"]
    report = {"elasticsearch": cluster_health(settings.elasticsearch, clients().es)}
    try:
        clients().producer.list_topics(settings.kafka.ratings_topic, timeout=3)
        report["kafka"] = {"healthy": True}
    except KafkaException as err:
        report["kafka"] = {"healthy": False, "error": str(err)[:200]}
    report["model"] = queries.model_health(clients().es)
    healthy = all(part["healthy"] for part in report.values())
    return jsonify({"healthy": healthy, **report}), 200 if healthy else 503


@bp.post("/ops/alerts")
@writer
def alerts():
    """Alertmanager's webhook (API key as ``Authorization: Bearer``): a firing alert labelled
    ``action: retrain`` (drift, online CTR) submits a run of the retraining pipeline, one at a time."""
    body = request.get_json(silent=True)
    error = alerts_error(body)
    if error:
        raise ApiError(400, f"expected Alertmanager's webhook JSON (see /openapi.json): {error}")
    wanted = [a.get("labels", {}).get("alertname", "?") for a in body["alerts"]
              if a.get("status") == "firing" and a.get("labels", {}).get("action") == "retrain"]
    if not wanted:
        return jsonify({"retraining": False, "reason": "no firing alert asks for a retraining"}), 202
    started = start_retraining(current_app.config["CINEREC"], f"alert:{','.join(sorted(set(wanted)))}"[:60])
    return jsonify({"retraining": started is not None, "pid": started,
                    "reason": "started" if started else "a retraining is already running"}), 202


def start_retraining(settings, reason: str) -> int | None:
    """``cinerec retrain --now`` as a process of its own (logs in <data_dir>/logs/retrain.log): it
    submits a run to the scheduler (``ops/scheduler.py``), which queues one run at a time, or runs
    the pipeline itself when no scheduler answers; None while such a process is still running
    (its pid is in <data_dir>/retrain.pid)."""
    data_dir = Path(settings.services.data_dir)
    pid_file = data_dir / "retrain.pid"
    if pid_file.is_file():
        try:
            os.kill(int(pid_file.read_text()), 0)
            return None
        except (ProcessLookupError, ValueError):
            pass
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    with (data_dir / "logs" / "retrain.log").open("a") as log:
        child = subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", "retrain", "--now", "--reason", reason],
                                 stdout=log, stderr=log, start_new_session=True, env={**os.environ, **as_env(settings)})
    threading.Thread(target=child.wait, daemon=True).start()          # reaped when it ends: no zombie
    pid_file.write_text(str(child.pid))
    return child.pid


@bp.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


# -- helpers ----------------------------------------------------------------------------------

def _film_or_404(movie_id: int) -> dict:
    found = queries.get_film(clients().es, movie_id)
    if found is None:
        raise ApiError(404, f"unknown film {movie_id}")
    return found


def check_query() -> None:
    """Each query parameter a route reads, checked as the route checks it (400 on the first bad
    one): an over-long query string is refused for what is wrong in it before its length."""
    checks: dict[str, Callable[[str], object]] = {
        "q": _required, "title": _required, "k": lambda _: _k(), "genre": lambda _: _genres(),
        "year_from": _year, "year_to": _year}
    for name, check in checks.items():
        if name in request.args:
            check(name)


def _genres() -> list[str] | None:
    genres = request.args.getlist("genre")
    if len(genres) > GENRES_MAX or any(len(g) > GENRE_MAX for g in genres):
        raise ApiError(400, f"at most {GENRES_MAX} genre filters of at most {GENRE_MAX} characters each")
    return genres or None


def _required(name: str, longest: int = TITLE_MAX) -> str:
    value = (request.args.get(name) or "").strip()
    if not value:
        raise ApiError(400, f"query parameter {name!r} is required")
    if len(request.args[name]) > longest:
        raise ApiError(400, f"query parameter {name!r} is longer than {longest} characters")
    return value


def _k() -> int:
    api = current_app.config["CINEREC"].api
    return _int("k", api.default_k, 1, api.max_k)


def _year(name: str) -> int | None:
    return _int(name, None, YEAR_MIN, YEAR_MAX)


def _int(name: str, default, low: int, high: int):
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value

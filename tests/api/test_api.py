"""Every endpoint and error path on the real (embedded) Elasticsearch and Kafka."""

import json
import re
import time

import numpy as np
import pytest
from confluent_kafka import Consumer, TopicPartition
from openapi_spec_validator import validate
from planted import block_of

from cinerec.api import create_app
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.core.artifact import ModelArtifact
from cinerec.core.events import parse_event
from cinerec.ops.services._process import free_port
from cinerec.platform.elasticsearch import connect

pytestmark = pytest.mark.services


KEY = {"X-API-Key": "writer-key"}


@pytest.fixture
def client(indexed, settings):
    app = create_app(settings.replace(api__api_keys="other-key, writer-key"))
    app.testing = True
    return app.test_client()


def test_title_search(client):
    body = client.get("/films?q=toy st").get_json()
    assert body["results"][0]["title"] == "Toy Story"


def test_recommendations_by_title_come_with_reasons(client):
    response = client.get("/recommendations?title=Toy Story (1995)&k=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["film"]["movie_id"] == 1 and len(body["results"]) == 5
    assert all(block_of(r["movie_id"]) == 0 and "Toy Story" in r["reason"] for r in body["results"])


def test_title_case_does_not_matter(client):
    assert client.get("/recommendations?title=toy story").get_json()["film"]["movie_id"] == 1


def test_unknown_title_is_404_with_suggestions(client):
    response = client.get("/recommendations?title=Toy Stori")
    assert response.status_code == 404
    body = response.get_json()
    assert "no film titled" in body["error"] and "Toy Story (1995)" in body["suggestions"]


def test_film_similar_and_also_watched(client):
    assert client.get("/films/26").get_json()["title"] == "Heat"
    assert client.get("/films/9999").status_code == 404
    similar = client.get("/films/30/similar?k=4").get_json()["results"]
    assert len(similar) == 4 and all(r["reason"].startswith("similar to") for r in similar)
    also = client.get("/films/30/also-watched?k=3").get_json()["results"]
    assert len(also) == 3 and all(block_of(r["movie_id"]) == 1 for r in also)


def test_trending_films_most_rated_lately_first(client, indexed, fresh_indices):
    assert client.get("/films/trending").get_json()["results"] == []      # freshly indexed: nothing yet
    for film, count in ((30, 3), (5, 7)):
        fresh_indices.update(index="film_stats", id=str(film), doc={"trending": count}, refresh=True)
    try:
        results = client.get("/films/trending?k=5").get_json()["results"]
        assert [(r["movie_id"], r["trending"]) for r in results] == [(5, 7), (30, 3)]
        assert results[0]["reason"] == "rated 7 times lately"
        assert [r["movie_id"] for r in client.get("/films/trending?genre=Horror").get_json()["results"]] == [30]
    finally:
        for film in (30, 5):
            fresh_indices.update(index="film_stats", id=str(film), doc={"trending": 0}, refresh=True)


def test_user_recommendations(client):
    body = client.get("/users/45/recommendations?k=5").get_json()
    assert len(body["results"]) == 5 and all(block_of(r["movie_id"]) == 1 for r in body["results"])
    assert client.get("/users/4500/recommendations").status_code == 404


@pytest.mark.parametrize("url, words", [
    ("/films", "'q' is required"), ("/recommendations", "'title' is required"),
    ("/users/1/recommendations?k=0", "between 1 and 100"), ("/users/1/recommendations?k=ten", "whole number"),
    ("/users/1/recommendations?year_from=abc", "whole number"),
])
def test_bad_parameters_are_400_with_a_message(client, url, words):
    response = client.get(url)
    assert response.status_code == 400 and words in response.get_json()["error"]


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").get_json()
    wrong = client.delete("/films/1")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, HEAD, OPTIONS" and wrong.get_json()["error"]


def test_ids_outside_the_event_contract_are_404(client):
    assert client.get("/films/2147483648").status_code == 404
    assert client.get("/users/0/recommendations").status_code == 404


def test_writes_need_a_known_api_key(client):
    rating = {"user_id": 3, "movie_id": 7, "rating": 4.0}
    missing = client.post("/ratings", json=rating)
    assert missing.status_code == 401 and "X-API-Key" in missing.get_json()["error"]
    assert client.post("/ratings", json=rating, headers={"X-API-Key": "guess"}).status_code == 403
    assert client.post("/ratings", json=rating, headers=KEY).status_code == 202


def test_a_key_writing_too_fast_gets_429_with_retry_after(indexed, settings):
    app = create_app(settings.replace(api__api_keys="k", api__write_rate_per_s=0.5, api__write_burst=2))
    client = app.test_client()
    statuses = [client.post("/ratings", json={"user_id": 3, "movie_id": 7, "rating": 4.0},
                            headers={"X-API-Key": "k"}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1 and "per second" in statuses[-1].get_json()["error"]


def test_oversized_bodies_and_query_strings_are_refused(client, settings):
    big = client.post("/ratings", data=b"{" + b" " * 5000 + b"}", content_type="application/json", headers=KEY)
    assert big.status_code == 413 and big.get_json()["error"]
    long = client.get("/films?q=toy&padding=" + "a" * settings.api.max_query_bytes)
    assert long.status_code == 414 and "query string" in long.get_json()["error"]


def test_clients_cannot_set_the_event_id_time_or_source(client):
    response = client.post("/ratings", json={"user_id": 3, "movie_id": 7, "rating": 4.0, "ts": 0,
                                             "source": "simulator"}, headers=KEY)
    assert response.status_code == 400 and response.get_json()["reason"] == "unknown_field"


def test_post_rating_is_published_to_kafka(client, settings):
    response = client.post("/ratings", json={"user_id": 3, "movie_id": 7, "rating": 4.5}, headers=KEY)
    assert response.status_code == 202
    event_id = response.get_json()["event_id"]
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "api-test", "enable.auto.commit": False})
    partitions = range(settings.kafka.partitions)
    consumer.assign([TopicPartition(settings.kafka.ratings_topic, p, 0) for p in partitions])
    found, deadline = [], time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        found = [parse_event(m.value()) for m in consumer.consume(10, timeout=0.2) if not m.error()]
    consumer.close()
    assert found and found[0].event_id == event_id and found[0].source == "api" and found[0].rating == 4.5


@pytest.mark.parametrize("body, reason", [
    ({"user_id": 3, "movie_id": 7, "rating": 4.3}, "out_of_range"),
    ({"user_id": "3", "movie_id": 7, "rating": 4.0}, "wrong_type"),
    ({"user_id": 3, "rating": 4.0}, "missing_field"),
])
def test_invalid_ratings_are_400_with_the_reason(client, body, reason):
    response = client.post("/ratings", json=body, headers=KEY)
    assert response.status_code == 400 and response.get_json()["reason"] == reason


def test_health_and_metrics(client):
    health = client.get("/health").get_json()
    assert health["healthy"] and health["model"]["version"] == "7"
    client.get("/films/1")
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'cinerec_http_requests_total\{method="GET",route="/films/<id:movie_id>",status="200"\}', text)
    assert "cinerec_http_request_seconds_bucket" in text


def test_dependencies_down_give_503_not_500(indexed, base_settings):
    down = base_settings.replace(elasticsearch__url=f"http://127.0.0.1:{free_port()}",
                                 kafka__bootstrap_servers=f"127.0.0.1:{free_port()}",
                                 elasticsearch__request_timeout_s=1, api__api_keys="writer-key")
    client = create_app(down).test_client()
    film = client.get("/films/1")
    assert film.status_code == 503 and film.get_json()["error"] and film.headers["Retry-After"]
    assert client.get("/health").status_code == 503
    assert client.post("/ratings", json={"user_id": 3, "movie_id": 7, "rating": 4.0}, headers=KEY).status_code == 503


def test_openapi_lists_exactly_the_served_routes(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
              for rule in client.application.url_map.iter_rules() if not rule.endpoint.startswith(("static", "web."))
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    assert "Cinerec API" in client.get("/docs").get_data(as_text=True)
    validate(json.loads(json.dumps(spec)))   # raises on an invalid OpenAPI 3 document


def test_an_alias_swap_while_requests_run_fails_none(client, indexed, base_settings):
    import threading

    from cinerec.batch.indexing import build_indices as rebuild

    frames = indexed
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    model = create("als", {"rank": 8, "iterations": 4, "regularization": 0.05, "alpha": 2.0})
    model.fit(Interactions.build(ratings, users, items))
    artifact = ModelArtifact("als", model.params, users, items, model.user_factors, model.item_factors)
    statuses, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(client.get("/recommendations?title=Toy Story&k=3").status_code)
            statuses.append(client.get("/users/3/recommendations?k=3").status_code)
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for version in (8, 9):
            rebuild(connect(base_settings.elasticsearch), frames, artifact, version=version, keep=2)
    finally:
        stop.set()
        thread.join()
    assert statuses and set(statuses) == {200}
    assert client.get("/health").get_json()["model"]["version"] == "9"


def test_the_document_bounds_every_size_the_server_refuses(client, settings):
    """No valid request is too large: the longest query and body the document allows fit the
    server's limits (gunicorn's request line, 8,190 bytes, above them all); an over-long query
    with a bad parameter is refused for the parameter."""
    from cinerec.api.bodies import RATING, longest_json
    from cinerec.api.openapi import longest_query

    with client.application.app_context():                  # k's bound is a setting of the app
        assert longest_query() < settings.api.max_query_bytes < 8190 - 100
    assert longest_json(RATING) < settings.api.max_body_bytes
    padding = "x" * settings.api.max_query_bytes
    bad = client.get(f"/users/3/recommendations?year_from=1&genre={padding}")
    assert bad.status_code == 400 and "genre" in bad.get_json()["error"]
    assert client.get(f"/films/1?unknown={padding}").status_code == 414


def test_the_webhook_takes_alertmanagers_fields_and_refuses_others(client):
    alert = {"status": "firing", "labels": {"alertname": "ApiLatencyHigh"}, "annotations": {"summary": "slow"},
             "startsAt": "2026-12-06T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/graph",
             "fingerprint": "a1b2"}
    body = {"receiver": "retrain", "status": "firing", "alerts": [alert], "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "version": "4", "groupKey": "{}", "truncatedAlerts": 0}
    accepted = client.post("/ops/alerts", json=body, headers=KEY)
    assert accepted.status_code == 202 and accepted.get_json()["retraining"] is False
    refused = client.post("/ops/alerts", json={**body, "alerts": [{**alert, "colour": "red"}]}, headers=KEY)
    assert refused.status_code == 400 and "colour" in refused.get_json()["error"]
    too_many = client.post("/ops/alerts", json={**body, "alerts": [alert] * 11}, headers=KEY)
    assert too_many.status_code == 400 and "alerts" in too_many.get_json()["error"]

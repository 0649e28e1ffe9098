"""The web app on the real Elasticsearch, Kafka and an SQLite accounts database: accounts,
CSRF, picks, recommendations while the stream has not folded the picks in, film pages, the
dashboard. (tests/api/test_browser.py drives the whole loop in Chromium.)"""

import json
import re

import pytest
from confluent_kafka import Consumer, TopicPartition
from planted import block_of

from cinerec.api import create_app
from cinerec.core.events import parse_event
from cinerec.core.privacy import PRIVACY_TEXT_VERSION, parse_privacy_event
from cinerec.platform.elasticsearch import connect
from cinerec.search import queries

pytestmark = pytest.mark.services


@pytest.fixture
def app(indexed, settings, tmp_path):
    app = create_app(settings.replace(services__data_dir=str(tmp_path)))
    app.testing = True
    return app


def csrf(client, path="/signup") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True))[1]


def sign_up(client, email="ada@example.org", password="correct horse", consents=("personalisation", "analytics")):
    return client.post("/signup", data={"email": email, "password": password, "csrf_token": csrf(client),
                                        **{f"consent_{c}": "yes" for c in consents}})


def test_sign_up_gives_a_user_id_above_every_dataset_and_leads_to_the_picks(app):
    client = app.test_client()
    assert client.get("/").headers["Location"].endswith("/signup")          # not signed in: asked to sign up
    response = sign_up(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/start")
    person = app.extensions["cinerec.accounts"].sign_in("ADA@example.org", "correct horse")
    assert person.user_id == app.config["CINEREC"].web.first_user_id
    other = app.test_client()
    sign_up(other, "bob@example.org")
    assert app.extensions["cinerec.accounts"].sign_in("bob@example.org", "correct horse").user_id == person.user_id + 1
    stored = app.extensions["cinerec.accounts"].engine.connect().exec_driver_sql(
        "select password_hash from accounts").scalars().all()
    assert all(h.startswith("scrypt:") and "correct horse" not in h for h in stored)


def test_account_errors_are_shown_not_thrown(app):
    client = app.test_client()
    sign_up(client)
    again = app.test_client()
    assert "exists" in sign_up(again).get_data(as_text=True)
    assert "valid e-mail" in sign_up(again, email="nope").get_data(as_text=True)
    assert "8 to 200" in sign_up(again, email="c@example.org", password="short").get_data(as_text=True)
    wrong = again.post("/signin", data={"email": "ada@example.org", "password": "wrong password",
                                        "csrf_token": csrf(again, "/signin")})
    assert wrong.status_code == 400 and "wrong e-mail or password" in wrong.get_data(as_text=True)


def test_every_form_needs_the_csrf_token(app):
    client = app.test_client()
    client.get("/signup")
    forged = client.post("/signup", data={"email": "eve@example.org", "password": "correct horse"})
    assert forged.status_code == 403 and "expired" in forged.get_json()["error"]
    sign_up(client)
    assert client.post("/me/ratings", json={"movie_id": 1, "rating": 5}).status_code == 403
    assert client.post("/signout").status_code == 403


def test_proposals_span_genres_and_picks_are_published_as_ratings(app, settings):
    client = app.test_client()
    sign_up(client)
    page = client.get("/start").get_data(as_text=True)
    proposed = [int(m) for m in re.findall(r'<li data-movie="(\d+)"', page)]
    assert len(proposed) >= 5 and len({block_of(m) for m in proposed}) >= 2      # not one genre only
    token = csrf(client, "/start")
    assert client.post("/start", data={"movie_id": ["1", "2"], "csrf_token": token}).status_code == 400
    picks = ["1", "2", "3", "4", "5"]
    done = client.post("/start", data={"movie_id": picks, "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/me")
    events = read_topic(settings)
    user = app.config["CINEREC"].web.first_user_id
    assert sorted((e.user_id, e.movie_id, e.rating) for e in events) == [(user, int(m), 5.0) for m in picks]

    waiting = client.get("/me/recommendations.json").get_json()      # no streaming job here: not folded in
    assert waiting["status"] == "waiting" and len(waiting["results"]) == 5
    assert all(r["reason"].startswith("people who liked ") for r in waiting["results"])
    assert not {str(r["movie_id"]) for r in waiting["results"]} & set(picks)
    assert all(block_of(r["movie_id"]) == 0 for r in waiting["results"])          # the picks' block

    rated = client.post("/me/ratings", json={"movie_id": 7, "rating": 4}, headers={"X-CSRF-Token": token})
    assert rated.status_code == 202
    assert client.post("/me/ratings", json={"movie_id": 7, "rating": 9},
                       headers={"X-CSRF-Token": token}).status_code == 400
    assert client.post("/signout", data={"csrf_token": token}).status_code == 302
    assert client.get("/me/recommendations.json").status_code == 401


def test_film_page_shows_statistics_also_watched_and_similar(app):
    client = app.test_client()
    page = client.get("/film/1").get_data(as_text=True)
    assert "Toy Story" in page and 'id="also-watched"' in page and 'id="similar"' in page
    assert re.search(r'id="rating-count">\d+<', page)
    assert client.get("/film?title=Toy Story (1995)").headers["Location"].endswith("/film/1")
    assert client.get("/film/999999").status_code == 404


def test_pages_load_their_assets_from_the_app(app):
    client = app.test_client()
    page = client.get("/signup").get_data(as_text=True)
    for asset in re.findall(r'(?:href|src)="(/assets/[^"]+)"', page):
        assert client.get(asset).status_code == 200, asset
    assert len(re.findall(r'(?:href|src)="(/assets/[^"]+)"', page)) == 2


def test_dashboard_draws_every_panel(app):
    page = app.test_client().get("/dashboard").get_data(as_text=True)
    assert page.count("<figure class=\"panel") == 8
    assert re.search(r'id="panel-average_by_genre".*?data-bars="[1-9]', page, re.S)


def read_topic(settings, topic=None, parse=parse_event):
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "web-test", "enable.auto.commit": False})
    topic = topic or settings.kafka.ratings_topic
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.kafka.partitions)])
    events, idle = [], 0
    while idle < 10:
        batch = consumer.consume(100, timeout=0.3)
        idle = idle + 1 if not batch else 0
        events += [parse(m.value()) for m in batch if not m.error()]
    consumer.close()
    return events


def test_consent_is_asked_per_purpose_recorded_with_the_text_version_and_published(app, settings):
    client = app.test_client()
    sign_up(client, "noor@example.org", consents=("analytics",))
    token = csrf(client, "/start")
    picks = [str(h["movie_id"]) for h in queries.popular(connect(settings.elasticsearch), size=5)]
    client.post("/start", data={"movie_id": picks, "csrf_token": token})
    plain = client.get("/me/recommendations.json").get_json()
    assert plain["status"] == "non_personal" and len(plain["results"]) == 5           # nothing from their ratings
    assert all(f["reason"] == "popular with everyone" and str(f["movie_id"]) not in picks for f in plain["results"])
    assert client.post("/me/privacy", data={"csrf_token": token, "consent_personalisation": "yes"}).status_code == 302
    assert client.get("/me/recommendations.json").get_json()["status"] == "waiting"    # personal again
    published = read_topic(settings, settings.kafka.privacy_topic, parse_privacy_event)
    assert [(e.personalisation, e.analytics, e.erased) for e in published] == [(False, True, False),
                                                                                (True, False, False)]
    export = client.get("/me/export").get_json()
    assert [(c["purpose"], c["granted"], c["version"]) for c in export["consents"]] == [
        ("personalisation", False, PRIVACY_TEXT_VERSION), ("analytics", True, PRIVACY_TEXT_VERSION),
        ("personalisation", True, PRIVACY_TEXT_VERSION), ("analytics", False, PRIVACY_TEXT_VERSION)]
    assert export["account"]["email"] == "noor@example.org" and "password_hash" not in json.dumps(export)
    assert sorted(str(r["movie_id"]) for r in export["web_ratings"]) == sorted(picks)
    assert export["recommendations_served"][0]["status"] == "non_personal"
    assert export["in_force"] == {"personalisation": True, "analytics": False, "erased": False, "basis": "consent"}
    for topic in (settings.kafka.ratings_topic, settings.kafka.privacy_topic):     # no e-mail ever enters events
        assert not any(b"noor@" in raw for raw in read_topic(settings, topic, parse=bytes))


def test_erasing_oneself_needs_the_token_and_deletes_the_account(app, settings):
    client = app.test_client()
    sign_up(client, "gone@example.org")
    token = csrf(client, "/me/privacy")
    user_id = client.get("/me/export").get_json()["user_id"]
    assert client.delete("/me").status_code == 403                                    # no CSRF token
    erased = client.delete("/me", headers={"X-CSRF-Token": token})
    assert erased.status_code == 200 and erased.get_json()["account_deleted"]
    assert client.get("/me/export").status_code == 302                                # signed out
    assert sign_in_fails(client, "gone@example.org")
    events = read_topic(settings, settings.kafka.privacy_topic, parse_privacy_event)
    assert (events[-1].user_id, events[-1].erased) == (user_id, True)


def sign_in_fails(client, email):
    answer = client.post("/signin", data={"email": email, "password": "correct horse", "csrf_token": csrf(client)})
    return answer.status_code == 400

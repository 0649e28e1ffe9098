"""The people-facing pages: sign up / in / out, pick films, recommendations that update by
themselves, film pages, the activity dashboard.

    /            → /signup (not signed in) → /start (no picks yet) → /me
    /start       pick web.picks films: as-you-type search (GET /films?q=) or proposals
    /me          5 recommendations with reasons; polls /me/recommendations.json until the stream
                 has folded the ratings in; rate any film (1–5 stars) and watch the list change
    /film/<id>   statistics, "people who watched this also watched", similar films
    /dashboard   the activity panels (dashboard.py), refreshed every few seconds
    /me/privacy  consent per purpose, data export (GET /me/export), erasure (DELETE /me)

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax) holding the account number and a
CSRF token that every form and every JSON write must send back.
"""

from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for

from cinerec.core.privacy import PRIVACY_TEXT_VERSION, PURPOSES
from cinerec.platform.accounts import AccountError, Accounts, Person
from cinerec.search import queries

from .. import privacy
from ..clients import clients
from ..errors import ApiError
from ..ratings import publish_ratings
from . import dashboard
from .recommend import for_person

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")
SHOWN = 5                     # recommendations on /me


def accounts() -> Accounts:
    return current_app.extensions["cinerec.accounts"]


def person() -> Person | None:
    if "person" not in g:
        account = session.get("account")
        g.person = accounts().get(account) if account else None
    return g.person


def signed_in(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        if person() is None:
            if request.path.endswith(".json") or request.method != "GET":
                raise ApiError(401, "sign in first")
            return redirect(url_for("web.signup"))
        return view(*args, **kwargs)
    return guarded


@bp.before_app_request
def check_csrf():
    """Every form post and JSON write of the web pages carries the session's token."""
    if request.blueprint == "web" and request.method == "POST":
        _check_token(request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or "")


def _check_token(sent: str) -> None:
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        raise ApiError(403, "the form expired or came from elsewhere: reload the page and try again")


@bp.app_context_processor
def page_globals():
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return {"csrf_token": session["csrf"], "person": person(), "picks": settings().web.picks}


# -- accounts ---------------------------------------------------------------------------------

@bp.get("/")
def home():
    me = person()
    if me is None:
        return redirect(url_for("web.signup"))
    return redirect(url_for("web.me") if me.ratings else url_for("web.start"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    def sign_up(email: str, password: str) -> Person:
        who = accounts().sign_up(email, password, _chosen())
        try:
            privacy.publish_choices(settings(), who, clients().producer)
            return who
        except Exception:
            accounts().erase(who.account_id)         # no account whose choices the job does not know
            raise
    return _account_page("signup.html", sign_up, "web.start")


def _chosen() -> dict[str, bool]:
    return {purpose: request.form.get(f"consent_{purpose}") == "yes" for purpose in PURPOSES}


def settings():
    return current_app.config["CINEREC"]


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    return _account_page("signin.html", lambda email, password: accounts().sign_in(email, password), "web.home")


def _account_page(template: str, act, then: str):
    """The sign-up or sign-in form; a post that works signs the person in and moves on."""
    error = None
    if request.method == "POST":
        try:
            _sign_in(act(request.form.get("email", ""), request.form.get("password", "")))
            return redirect(url_for(then))
        except AccountError as err:
            error = str(err)
    return render_template(template, error=error, version=PRIVACY_TEXT_VERSION,
                           erased=request.args.get("erased")), 400 if error else 200


@bp.post("/signout")
def signout():
    session.clear()
    return redirect(url_for("web.signin"))


def _sign_in(who: Person) -> None:
    session.clear()
    session["account"] = who.account_id
    session["csrf"] = secrets.token_urlsafe(24)


# -- picks and recommendations ----------------------------------------------------------------

@bp.get("/start")
@signed_in
def start():
    return render_template("start.html", proposals=queries.proposals(clients().es, size=12))


@bp.post("/start")
@signed_in
def submit_picks():
    wanted = settings().web.picks
    chosen = list(dict.fromkeys(request.form.getlist("movie_id")))
    if len(chosen) != wanted or not all(c.isdigit() for c in chosen):
        raise ApiError(400, f"pick exactly {wanted} different films")
    found = clients().es.mget(index=queries.FILMS, ids=chosen, source=False)["docs"]
    if not all(doc.get("found") for doc in found):
        raise ApiError(400, "a picked film is not in the catalog")
    _rate([(int(c), settings().web.pick_rating) for c in chosen])
    return redirect(url_for("web.me"))


@bp.get("/me")
@signed_in
def me():
    return render_template("me.html")


@bp.get("/me/recommendations.json")
@signed_in
def my_recommendations():
    found = for_person(person(), SHOWN)
    if found["results"]:
        accounts().record_served(person().account_id, [f["movie_id"] for f in found["results"]], found["status"])
    return jsonify(found)


@bp.post("/me/ratings")
@signed_in
def rate():
    body = request.get_json(silent=True) or {}
    if not isinstance(body.get("movie_id"), int) or body.get("rating") not in (1, 2, 3, 4, 5):
        raise ApiError(400, "send {movie_id, rating} with a rating of 1 to 5 stars")
    (event,) = _rate([(body["movie_id"], float(body["rating"]))])
    return jsonify({"event_id": event.event_id, "status": "accepted"}), 202


def _rate(ratings: list[tuple[int, float]]):
    """Publishes the person's ratings (the path POST /ratings uses) and records them."""
    me = person()
    assert me is not None, "only the signed_in views rate"
    events = publish_ratings([{"user_id": me.user_id, "movie_id": m, "rating": r} for m, r in ratings])
    accounts().add_ratings(me.account_id, [(e.movie_id, e.rating, e.ts, e.event_id) for e in events])
    return events


# -- privacy ----------------------------------------------------------------------------------

@bp.get("/me/privacy")
@signed_in
def privacy_page():
    return render_template("privacy.html", version=PRIVACY_TEXT_VERSION, saved=request.args.get("saved"))


@bp.post("/me/privacy")
@signed_in
def change_consent():
    privacy.record_consent(settings(), accounts(), person().account_id, _chosen(), clients().producer)
    return redirect(url_for("web.privacy_page", saved=1))


@bp.get("/me/export")
@signed_in
def export_me():
    response = jsonify(privacy.export(settings(), clients().es, accounts(), person().user_id))
    response.headers["Content-Disposition"] = "attachment; filename=cinerec-my-data.json"
    return response


@bp.route("/me", methods=["DELETE"])
@bp.post("/me/delete")
@signed_in
def erase_me():
    if request.method == "DELETE":
        _check_token(request.headers.get("X-CSRF-Token") or "")
    report = privacy.erase(settings(), clients().es, accounts(), person().user_id, clients().producer)
    session.clear()
    return jsonify(report) if request.method == "DELETE" else redirect(url_for("web.signup", erased=1))


# -- films ------------------------------------------------------------------------------------

@bp.get("/film")
def film_by_title():
    title = (request.args.get("title") or "").strip()[:200]
    found = queries.exact_title(clients().es, title) if title else None
    if found:
        return redirect(url_for("web.film", movie_id=found["movie_id"]))
    matches = queries.find_titles(clients().es, title, size=10) if title else []
    return render_template("search.html", title=title, matches=matches), 200 if matches else 404


@bp.get("/film/<id:movie_id>")
def film(movie_id: int):
    es = clients().es
    found = queries.get_film(es, movie_id)
    if found is None:
        return render_template("search.html", title=str(movie_id), matches=[]), 404
    return render_template("film.html", film=found, also_watched=queries.also_watched(es, movie_id, size=10),
                           similar=queries.similar_films(es, movie_id, size=10))


# -- dashboard --------------------------------------------------------------------------------

@bp.get("/dashboard")
def dashboard_page():
    return render_template("dashboard.html", panels=dashboard.panels(clients().es))


@bp.get("/dashboard/panels")
def dashboard_panels():
    return render_template("_panels.html", panels=dashboard.panels(clients().es))

"""Flask app factory: settings and clients per app (created lazily), guards, JSON errors, metrics,
and the web app's pages (``api/web``)."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

from . import errors, guard, metrics, web
from .clients import Clients
from core.events import MAX_ID
from core.settings import Settings, load_settings


class IdConverter(IntegerConverter):
    """``<id:name>``: a film or user id as the event contract bounds it (1..MAX_ID); others are 404."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)      # the web pages serve their assets under /assets
    app.json.sort_keys = False
    settings = settings or load_settings()
    app.config["CINEREC"] = settings
    app.extensions["cinerec"] = Clients(settings)
    app.url_map.converters["id"] = IdConverter

    from .openapi import bp as openapi_bp
    from .routes import bp as routes_bp

    app.register_blueprint(routes_bp)
    app.register_blueprint(openapi_bp)
    web.install(app)
    guard.install(app)
    errors.install(app)
    metrics.install(app)
    return app

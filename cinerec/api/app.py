"""Flask app factory: settings and clients per app (created lazily), guards, JSON errors, metrics,
and the web app's pages (``api/web``)."""

from __future__ import annotations

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from cinerec.core.events import MAX_ID
from cinerec.core.settings import Settings, load_settings

from . import errors, guard, metrics, web
from .clients import Clients


class IdConverter(IntegerConverter):
    """``<id:name>``: a film or user id as the event contract bounds it (1..MAX_ID); others are 404."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)


class OrjsonProvider(DefaultJSONProvider):
    """Responses serialised once, by orjson (keys in insertion order, numpy values as numbers);
    what orjson does not know (dates, decimals) falls back to Flask's own conversions."""

    OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, default=self.default, option=self.OPTIONS).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(orjson.dumps(obj, default=self.default, option=self.OPTIONS),
                                        mimetype=self.mimetype)


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)      # the web pages serve their assets under /assets
    app.json = OrjsonProvider(app)
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

"""The web app for people (pages, accounts, dashboard), served by the same Flask app as the API."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from cinerec.platform.accounts import Accounts

__all__ = ["install"]


def install(app: Flask) -> None:
    settings = app.config["CINEREC"]
    app.secret_key = settings.web.secret_key or _kept_secret(Path(settings.services.data_dir) / "web-secret")
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.extensions["cinerec.accounts"] = Accounts(settings)
    from .pages import bp
    app.register_blueprint(bp)


def _kept_secret(path: Path) -> str:
    """A signing key made once and kept in the data directory, so every worker (and a restart)
    signs sessions with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        try:
            os.link(draft, path)                 # atomic: the first worker's key wins, whole
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()

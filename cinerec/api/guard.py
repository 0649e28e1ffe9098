"""Who may write, how fast and how much: API keys, a per-key rate limit, request size limits.

    every request      body > api.max_body_bytes (the webhook: > the largest its schema allows) -> 413;
                       query string > api.max_query_bytes -> 414, unless a parameter in it is invalid
                       (400, as its route would answer): the longest valid query is shorter
    @writer routes     no X-API-Key (or Authorization: Bearer, for Alertmanager) -> 401, a key not in
                       api.api_keys -> 403,
                       more than api.write_rate_per_s (burst api.write_burst) per key -> 429 + Retry-After
The rate limit is a token bucket per key in each worker process (gunicorn runs api.workers of them).
"""

from __future__ import annotations

import functools
import hmac
import threading
import time

from flask import Flask, current_app, request

from .bodies import ALERTS_MAX_BYTES
from .errors import ApiError

KEY_HEADER = "X-API-Key"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take()`` is False when none is left."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = float(burst), clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True

    def wait_s(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate else 0.0


def install(app: Flask) -> None:
    api = app.config["CINEREC"].api
    app.config["MAX_CONTENT_LENGTH"] = api.max_body_bytes
    app.extensions["cinerec.buckets"] = {}

    @app.before_request
    def limit_sizes():
        if request.endpoint == "api.alerts":
            request.max_content_length = ALERTS_MAX_BYTES
        if len(request.query_string) > api.max_query_bytes:
            from .routes import check_query

            check_query()
            raise ApiError(414, f"the query string is longer than {api.max_query_bytes} bytes")


def writer(view):
    """The route writes: it needs a known API key and is rate-limited per key."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        api = current_app.config["CINEREC"].api
        bearer = request.headers.get("Authorization", "")
        key = request.headers.get(KEY_HEADER, "") or (bearer[7:] if bearer.startswith("Bearer ") else "")
        if not key:
            raise ApiError(401, f"this route writes: send an API key in the {KEY_HEADER} header")
        if not any(hmac.compare_digest(key.encode(), known.encode()) for known in api.keys()):
            raise ApiError(403, "this API key may not write")
        if api.write_rate_per_s:
            buckets = current_app.extensions["cinerec.buckets"]
            bucket = buckets.setdefault(key, TokenBucket(api.write_rate_per_s, api.write_burst))
            if not bucket.take():
                raise ApiError(429, f"more than {api.write_rate_per_s:g} writes per second with this key",
                               headers={"Retry-After": str(max(1, round(bucket.wait_s())))})
        return view(*args, **kwargs)

    return guarded

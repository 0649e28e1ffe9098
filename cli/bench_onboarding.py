"""`cinerec bench onboarding`: what a new person waits for — seconds from submitting their picks
to 5 recommendations based on them (``/me/recommendations.json`` says "ready"), over N fresh
accounts, through the web app's own pages (cookies and CSRF tokens as a browser sends them)."""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import statistics
import time
import urllib.parse
import urllib.request
import uuid

from ._output import print_json
from core.settings import Settings


def one_person(base: str, picks: int, timeout_s: float) -> float | None:
    """Signs a new person up, submits the first ``picks`` proposals, polls until ready."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def page(path: str, form: dict | None = None) -> str:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        with browser.open(f"{base}{path}", data=data, timeout=30) as response:
            return response.read().decode()

    token = lambda html: re.search(r'name="csrf-token" content="([^"]+)"', html)[1]  # noqa: E731
    signup = page("/signup")
    start = page("/signup", {"email": f"bench-{uuid.uuid4().hex[:12]}@example.org", "password": "bench password",
                             "csrf_token": token(signup)})
    chosen = list(dict.fromkeys(re.findall(r'<li data-movie="(\d+)"', start)))[:picks]
    submitted = time.monotonic()
    page("/start", {"movie_id": chosen, "csrf_token": token(start)})
    while time.monotonic() - submitted < timeout_s:
        body = json.loads(page("/me/recommendations.json"))
        if body["status"] == "ready" and len(body["results"]) >= picks:
            return time.monotonic() - submitted
        time.sleep(0.05)
    return None


def bench_onboarding(settings: Settings, args: argparse.Namespace) -> int:
    base = args.url or f"http://{settings.api.host}:{settings.api.port}"
    waits = [one_person(base, settings.web.picks, args.timeout) for _ in range(args.tries)]
    done = sorted(w for w in waits if w is not None)
    q = (lambda p: round(statistics.quantiles(done, n=100)[p - 1], 3) if len(done) > 1 else  # noqa: E731
         (round(done[0], 3) if done else None))
    print_json({"benchmark": "onboarding", "url": base, "tries": args.tries, "ready": len(done),
                "timed_out": args.tries - len(done), "p50_s": q(50), "p95_s": q(95),
                "max_s": round(done[-1], 3) if done else None})
    return 0


def add_parser(bench_sub) -> None:
    onboarding = bench_sub.add_parser("onboarding", help="seconds from submitting the picks to recommendations "
                                                         "based on them, over fresh accounts (JSON)")
    onboarding.add_argument("--tries", type=int, default=20, help="new accounts (default 20)")
    onboarding.add_argument("--timeout", type=float, default=60.0, help="give up on one after this many seconds")
    onboarding.add_argument("--url", help="the app's base URL (default: http://<api.host>:<api.port>)")
    onboarding.set_defaults(run=bench_onboarding)

"""A person in headless Chromium (Debian's, driven by Playwright) against the whole loop — real
Kafka, Elasticsearch, streaming job and `cinerec serve`: sign up, pick 5 films (one by search,
four from the proposals), see 5 recommendations appear, rate one and see the list change, open
the dashboard and see charts, sign out. Screenshots go to the test's temp dir (path printed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from chaos_helpers import trained_world, wait_until_served

from cinerec.ops.services._process import free_port
from cinerec.platform.elasticsearch import connect

pytestmark = [pytest.mark.services, pytest.mark.spark, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def loop(services, base_settings, fresh_indices, spark, tmp_path_factory):
    """A trained world, `cinerec stream` and `cinerec serve` running; the app's base URL."""
    data_dir = tmp_path_factory.mktemp("browser") / "var"
    port = free_port()
    extra = {"CINEREC_API__PORT": str(port), "CINEREC_API__WORKERS": "2", "CINEREC_STREAMING__TRIGGER_MS": "100"}
    with trained_world(base_settings, data_dir, "web", **extra) as (settings, env):
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CINEREC_", "PROMETHEUS_"))} | env
        logs = data_dir / "logs"
        logs.mkdir()
        children = [subprocess.Popen([sys.executable, "-m", "cinerec.cli.main", command], env=clean,
                                     start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=(logs / f"{command}.log").open("w"))
                    for command in ("stream", "serve")]
        base = f"http://127.0.0.1:{port}"
        wait_until_served(f"{base}/signup", logs / "serve.log")
        yield base, settings, data_dir
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=60)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_sign_up_pick_five_get_five_rate_one_dashboard_sign_out(loop, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, settings, _ = loop
    searched = connect(settings.elasticsearch).search(
        index="film_stats", size=1, sort=[{"rating_count": "desc"}],
        source=["title"])["hits"]["hits"][0]["_source"]["title"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})          # a phone-width screen
        page.goto(base)
        expect(page).to_have_url(f"{base}/signup")
        page.fill("input[name=email]", "grace@example.org")
        page.fill("input[name=password]", "a long enough secret")
        page.check("input[name=consent_personalisation]")
        page.check("input[name=consent_analytics]")
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base}/start")
        page.screenshot(path=shots / "1-start.png", full_page=True)

        page.fill("#search", searched[:6])                                      # one by as-you-type search
        page.locator("#matches button.pick").first.click()
        proposals = page.locator("#proposals button.pick:enabled")
        for _ in range(4):                                                      # four from the proposals
            proposals.first.click()
        expect(page.locator("#count")).to_have_text("5")
        page.screenshot(path=shots / "2-picked.png", full_page=True)
        submitted = time.monotonic()
        page.click("#submit-picks")
        expect(page).to_have_url(f"{base}/me")
        items = page.locator("#recommendations li")
        expect(items).to_have_count(5)                                          # never a blank list
        page.screenshot(path=shots / "3-waiting.png", full_page=True)
        expect(page.locator("#recommendations[data-status=ready]")).to_have_count(1, timeout=60_000)
        expect(items).to_have_count(5)
        seconds = time.monotonic() - submitted
        assert all(text.strip() for text in page.locator("#recommendations .reason").all_inner_texts())
        assert all(t.startswith("because you liked") for t in page.locator(".reason").all_inner_texts())
        page.screenshot(path=shots / "4-ready.png", full_page=True)

        before = [li.get_attribute("data-movie") for li in items.all()]
        items.first.locator("button[data-stars='2']").click()                   # rate the first one
        expect(page.locator("#recommendations[data-status=ready]")).to_have_count(1, timeout=60_000)
        page.wait_for_function("(first) => document.querySelector('#recommendations li')?.dataset.movie !== first",
                               arg=before[0], timeout=60_000)
        after = [li.get_attribute("data-movie") for li in items.all()]
        assert after != before and before[0] not in after                      # the rated film left the list
        page.screenshot(path=shots / "5-rated.png", full_page=True)

        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/dashboard")
        for panel in ("ratings_per_minute", "rating_distribution"):       # the audit index refreshes every 5 s
            expect(page.locator(f"#panel-{panel} svg rect").first).to_be_attached(timeout=30_000)
        page.screenshot(path=shots / "6-dashboard.png", full_page=True)
        page.click("#signout")
        expect(page).to_have_url(f"{base}/signin")
        browser.close()
    print(f"picks to 5 recommendations: {seconds:.1f} s; screenshots in {shots}")
    keep = os.environ.get("CINEREC_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)

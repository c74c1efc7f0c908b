"""The console as a person uses it, in headless Chromium (Playwright): the newcomer's story.

sign in → Settings → Integrations → Add integration → Webhook → Test against a loopback
receiver → Save → listed → Rule board → Notification settings for Block → switch → the
API shows it → Projects → repository → scan with its counts; a wrong token; a CSRF-less
POST refused. Screenshots of each page go to tests/console/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_app.web.app import create_app
from tests.conftest import ADMIN_TOKEN
from tests.notify.helpers import Receiver
from tests.support.live_server import serve
from tests.web.scan_helpers import SHA_BASE, SHA_HEAD, finding, upload

SHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = os.environ.get("FORGE_APP_TEST_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.slow


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("console browser test: the playwright package is not installed (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"console browser test: no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return sync_playwright


@pytest.fixture
def live(settings, storage) -> Iterator[tuple[str, Any]]:
    """A real forge-app on loopback with one repository scanned twice (main, then a PR)."""
    app = create_app(replace(settings, allow_private_targets=True), storage, run_worker=False)
    token = storage.create_upload_token("github", "octo/demo")
    with serve(app) as base:
        auth = {"Authorization": f"Bearer {token}"}
        for body in (upload([finding("py.eval"), finding("py.exec", line=9, code="exec(y)", severity="warning")],
                            commit=SHA_BASE),
                     upload([finding("py.eval"), finding("py.new", line=20, code="new()")], commit=SHA_HEAD, pr=7,
                            branch="feature", base_branch="main")):
            assert httpx.post(f"{base}/api/v1/scans", json=body, headers=auth).status_code == 201
        yield base, storage


def test_newcomer_story_in_a_browser(live):
    sync_playwright = _browser_or_skip()
    from playwright.sync_api import expect

    base, _storage = live
    SHOTS.mkdir(exist_ok=True)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with Receiver() as receiver, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def shot(name: str) -> None:
                page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

            # A wrong token: an error, no session.
            page.goto(f"{base}/")
            shot("01-sign-in")
            page.get_by_label("Admin token").fill("not-the-admin-token")
            page.get_by_role("button", name="Sign in").click()
            assert page.get_by_role("alert").inner_text().startswith("That admin token is not valid")
            assert page.get_by_role("link", name="Projects").count() == 0
            shot("02-wrong-token")

            page.get_by_label("Admin token").fill(ADMIN_TOKEN)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
            page.get_by_role("link", name="Integrations").click()
            shot("03-integrations-empty")
            page.get_by_role("link", name="Setup first integration").click()
            page.get_by_role("link", name="Webhook").click()
            page.get_by_label("Name").fill("Security team")
            page.get_by_label("Webhook URL").fill(receiver.url)
            page.evaluate("window.stillThisPage = true")
            page.get_by_role("button", name="Test").click()
            status = page.get_by_role("status")
            expect(status).to_contain_text("succeeded")
            assert page.evaluate("window.stillThisPage === true")  # answered in place: the live region speaks
            assert "HTTP 200" in status.inner_text()
            assert page.get_by_label("Webhook URL").input_value() == receiver.url
            assert len(receiver.requests) == 1
            assert receiver.requests[0].json()[0]["semgrep_finding"]  # the test payload, Semgrep's shape
            shot("04-webhook-tested")
            page.get_by_role("button", name="Save").click()
            assert page.get_by_role("cell", name="Security team").count() == 1
            shot("05-integrations-listed")
            [integration] = httpx.get(f"{base}/api/v1/integrations", headers=admin).json()
            # Its page: Test again (recorded this time) and the delivery is listed with its status.
            page.get_by_role("link", name="Security team").click()
            page.get_by_role("button", name="Test").click()
            expect(page.get_by_role("status")).to_contain_text("succeeded")
            page.goto(page.url)
            assert page.get_by_role("cell", name="succeeded").count() == 1  # among its recent deliveries
            shot("05b-integration-page")
            page.get_by_role("link", name="Settings").first.click()
            page.get_by_role("link", name="Connections").click()
            assert page.get_by_role("button", name="Set up the GitHub App").count() == 1
            shot("05c-connections")

            # Rule board: Block's switch off, then on; the API shows each change.
            page.get_by_role("link", name="Rule board").click()
            for heading in ("Monitor", "Comment", "Block"):
                assert page.get_by_role("heading", name=heading, exact=True).count() == 1
            gear = page.get_by_role("button", name="Notification settings for Block")
            assert gear.get_attribute("aria-expanded") == "false"
            gear.click()
            switch = page.get_by_role("switch", name="Security team")
            assert switch.is_checked()  # a new integration gets every column, as in the API
            with page.expect_navigation():
                switch.uncheck()  # a switch saves as soon as it is flipped
            policies = httpx.get(f"{base}/api/v1/integrations/{integration['id']}", headers=admin).json()
            assert policies["filters"]["policies"] == ["monitor", "comment"]
            # back on the board, the panel just used is open again
            assert gear.get_attribute("aria-expanded") == "true"
            with page.expect_navigation():
                page.get_by_role("switch", name="Security team").check()
            shot("06-rule-board")
            policies = httpx.get(f"{base}/api/v1/integrations/{integration['id']}", headers=admin).json()
            assert policies["filters"]["policies"] == ["monitor", "comment", "block"]

            # Projects → repository → the PR's scan with its counts.
            page.get_by_role("link", name="Projects").click()
            shot("07-projects")
            page.get_by_role("link", name="octo/demo").click()
            assert page.get_by_role("heading", name="Open findings (2)").count() == 1
            shot("08-repository")
            page.get_by_role("link", name="#2", exact=True).first.click()
            assert page.get_by_role("heading", name="New (1)").count() == 1
            assert page.get_by_role("heading", name="Fixed (1)").count() == 1
            assert page.get_by_role("heading", name="Unchanged (1)").count() == 1
            shot("09-scan")

            # The same pages on a phone: no sideways scrolling of the page itself.
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            phone.context.add_cookies(page.context.cookies())
            for path, name in (("/rules", "10-rule-board-phone"), (page.url.removeprefix(base), "11-scan-phone"),
                               ("/settings/integrations/new/webhook", "12-add-webhook-phone")):
                phone.goto(f"{base}{path}")
                assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1, path
                phone.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
            # Keyboard only: Tab reaches the skip link first, and focus is visible.
            phone.keyboard.press("Tab")
            assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
            assert phone.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

            # A POST without the CSRF token, from the signed-in browser: refused.
            refused = page.request.post(f"{base}/rules", form={"pattern": "py.eval", "mode": "block"})
            assert refused.status == 403
            assert "py.eval" not in httpx.get(f"{base}/api/v1/policies", headers=admin).json()["rules"]
        finally:
            browser.close()

"""The manifest flow's one-time codes: a state works once, for an hour, and not after someone else
configured an app; the link `forge-app github setup` prints opens the page once."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from forge_app.forges.github import registration
from forge_app.forges.github.credentials import load_credentials
from forge_app.web.app import create_app
from tests.github.fake_github import app_key
from tests.github.test_github_setup import form_of, unconfigured


def _conversion(fake_github, code: str, app_id: int, pem: str) -> None:
    fake_github.conversions[code] = {
        "id": app_id, "slug": f"forge-app-{app_id}", "name": f"forge-app {app_id}", "node_id": "A_1",
        "owner": {"login": "acme"}, "html_url": f"https://github.example/apps/forge-app-{app_id}",
        "client_id": "Iv1.abc", "client_secret": "client-secret-value", "webhook_secret": f"hook-{app_id}",
        "pem": pem}


def _state(c: TestClient, url: str = "/github/setup") -> str:
    page = c.get(url)
    assert page.status_code == 200, page.text
    return parse_qs(urlsplit(form_of(page.text)[0]).query)["state"][0]


def test_a_state_issued_before_an_app_was_configured_stops_working(settings, storage, fake_github) -> None:
    bare = unconfigured(settings)
    pem, _ = app_key()
    with TestClient(create_app(bare, storage, run_worker=False)) as c:
        first, second = _state(c), _state(c)  # two people open the first-run page
        _conversion(fake_github, "code-first-1", 101, pem)
        _conversion(fake_github, "code-second-2", 202, pem)
        assert c.get("/github/callback", params={"code": "code-first-1", "state": first}).status_code == 200
        late = c.get("/github/callback", params={"code": "code-second-2", "state": second})
        assert late.status_code == 409 and late.json()["error"] == "already_configured"
    assert load_credentials(bare, storage).app_id == "101"  # not replaced


def test_a_setup_link_opens_once_and_may_replace_the_app(settings, storage, fake_github) -> None:
    bare = unconfigured(settings)
    pem, _ = app_key()
    with TestClient(create_app(bare, storage, run_worker=False)) as c:
        _conversion(fake_github, "code-first-1", 101, pem)
        assert c.get("/github/callback", params={"code": "code-first-1", "state": _state(c)}).status_code == 200
        link = registration.page_code(bare, storage, None)
        state = _state(c, f"/github/setup?token={link}")
        again = c.get(f"/github/setup?token={link}")
        assert again.status_code == 403 and again.json()["error"] == "invalid_setup_link"
        _conversion(fake_github, "code-third-3", 303, pem)
        assert c.get("/github/callback", params={"code": "code-third-3", "state": state}).status_code == 200
    assert load_credentials(bare, storage).app_id == "303"


def test_states_expire_within_an_hour(settings, storage, fake_github, monkeypatch) -> None:
    bare = unconfigured(settings)
    pem, _ = app_key()
    with TestClient(create_app(bare, storage, run_worker=False)) as c:
        state = _state(c)
        _conversion(fake_github, "code-late-1", 101, pem)
        now = time.time()
        monkeypatch.setattr("storage.github.time.time", lambda: now + registration.STATE_TTL + 1)
        late = c.get("/github/callback", params={"code": "code-late-1", "state": state})
    assert late.status_code == 400 and late.json()["error"] == "invalid_state"
    assert registration.STATE_TTL <= 3600

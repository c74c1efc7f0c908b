"""Settings → Connections through the console: the same check against the forge as the API
(against the fake GitLab, which validates every request against GitLab's API description)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.helpers import sign_in
from tests.gitlab.fake_gitlab import FakeGitLab, FakeServer

TOKEN = "glpat-console-token-0123456789"
SECRET = "console-webhook-secret-123456"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    server = FakeServer(FakeGitLab()).start()
    try:
        yield server.fake
        assert server.fake.violations == [], server.fake.violations
    finally:
        server.stop()


def _form(csrf: str, base_url: str, token: str = TOKEN) -> dict[str, str]:
    return {"csrf": csrf, "forge": "gitlab", "scope": "project", "target": "acme/shop", "base_url": base_url,
            "token": token, "webhook_secret": SECRET}


def test_add_list_and_delete_a_gitlab_connection(client, storage, admin_headers, gitlab):
    gitlab.add_project("acme/shop", 321, default_branch="trunk")
    gitlab.add_token(TOKEN, ["api"])
    csrf = sign_in(client)
    r = client.post("/settings/connections", data=_form(csrf, gitlab.url), follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/settings/connections").text
    assert "acme/shop" in page and "/webhooks/gitlab" in page
    assert TOKEN not in page and SECRET not in page  # never shown again
    [doc] = client.get("/api/v1/connections", headers=admin_headers).json()
    assert (doc["forge"], doc["target"]) == ("gitlab", "acme/shop")
    assert "cannot be undone" in client.get(f"/settings/connections/{doc['id']}/delete").text
    client.post(f"/settings/connections/{doc['id']}/delete", data={"csrf": csrf})
    assert client.get("/api/v1/connections", headers=admin_headers).json() == []


def test_a_refused_token_is_said_and_nothing_is_stored(client, storage, gitlab):
    gitlab.add_project("acme/shop", 321)
    csrf = sign_in(client)
    r = client.post("/settings/connections", data=_form(csrf, gitlab.url, token="glpat-unknown-000000000"))
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert storage.connections() == []
    r = client.post("/settings/connections", data={**_form(csrf, gitlab.url), "scope": "workspace"})
    assert r.status_code == 400 and "scope must be one of" in r.text
    assert 'value="acme/shop"' in r.text  # what was typed stays (but never the token)
    assert TOKEN not in r.text


def test_github_app_status_and_setup_link(client):
    csrf = sign_in(client)
    page = client.get("/settings/connections").text
    assert "Not configured" in page and "Set up the GitHub App" in page
    r = client.post("/settings/connections/github-setup", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/github/setup?token=")
    assert client.get(r.headers["location"]).status_code == 200  # the manifest page opens

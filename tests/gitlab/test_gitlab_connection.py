"""`POST /api/v1/connections` for GitLab: the token is checked against the instance first.

The check reads, and never writes: `GET /personal_access_tokens/self` (valid, active, `api`
scope) then `GET /projects/:id` or `GET /groups/:id` (exists, visible, role). The fake
answers anything outside the API contract with 404 and fails the test.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitlab.fake_gitlab import FakeGitLab, free_port_url

SELF = "GET /personal_access_tokens/self"

TOKEN = "glpat-test-token-0123456789"
SECRET = "webhook-secret-123456"


def _create(client: Any, headers: dict[str, str], base_url: str, *, scope: str = "project",
            target: str = "acme/shop", token: str = TOKEN) -> Any:
    return client.post("/api/v1/connections", headers=headers, json={
        "forge": "gitlab", "base_url": base_url, "scope": scope, "target": target, "token": token,
        "webhook_secret": SECRET})


@pytest.fixture
def project(gitlab: FakeGitLab) -> None:
    gitlab.add_project("acme/shop", 321, default_branch="trunk")
    gitlab.add_group("acme", 55)


def _paths(gitlab: FakeGitLab) -> list[str]:
    return [f"{r.method} {r.path}" for r in gitlab.requests]


def test_project_connection_is_checked_with_two_reads(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api", "read_repository"])
    r = _create(client, admin_headers, gitlab.url)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["info"]["checked"] == "token scopes and project"
    assert doc["info"]["scopes"] == ["api", "read_repository"]
    assert doc["info"]["project_id"] == 321  # webhooks carry the id: they find this connection too
    assert doc["info"]["api_url"] == gitlab.url + "/api/v4"
    assert doc["webhook_url"] == "http://testserver/webhooks/gitlab"
    assert _paths(gitlab) == [SELF, "GET /projects/acme%2Fshop"]
    assert gitlab.outside_contract == [] and gitlab.violations == []
    assert gitlab.statuses == {} and not gitlab.writes()  # a check never writes
    listed = client.get("/api/v1/connections", headers=admin_headers).json()
    assert "token" not in listed[0] and "webhook_secret" not in listed[0]
    assert TOKEN not in client.get(f"/api/v1/connections/{doc['id']}", headers=admin_headers).text


def test_group_connection(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url + "/api/v4", scope="group", target="acme")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["group_id"] == 55 and r.json()["base_url"] == gitlab.url + "/api/v4"
    assert _paths(gitlab) == [SELF, "GET /groups/acme"]
    assert gitlab.outside_contract == [] and gitlab.violations == []


def test_group_connection_without_the_api_scope(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["read_api"])
    detail = _error(_create(client, admin_headers, gitlab.url, scope="group", target="acme"), "insufficient_scope")
    assert "needs to post discussions and set commit statuses" in detail
    assert _paths(gitlab) == [SELF]


def test_numeric_project_id(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url, target="321")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["project_id"] == 321
    assert _paths(gitlab) == [SELF, "GET /projects/321"]


def _error(r: Any, code: str) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == code, r.json()
    assert TOKEN not in r.text
    return r.json()["detail"]


def test_bad_token_is_a_401(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    detail = _error(_create(client, admin_headers, gitlab.url), "invalid_token")
    assert detail == (f"GitLab at {gitlab.url} rejected the token (401 Unauthorized): it is invalid, expired or "
                      "revoked")
    assert [(r.method, r.path, r.status) for r in gitlab.requests] == [("GET", "/personal_access_tokens/self", 401)]


@pytest.mark.parametrize("state", [{"active": False}, {"revoked": True}])
def test_an_inactive_or_revoked_token_is_refused(client, admin_headers, gitlab: FakeGitLab, project,
                                                 state: dict[str, bool]) -> None:
    gitlab.add_token(TOKEN, ["api"], **state)
    _error(_create(client, admin_headers, gitlab.url), "invalid_token")
    assert _paths(gitlab) == [SELF]


def test_missing_api_scope(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["read_api", "read_repository"])
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_scope")
    assert detail == ("the token lacks the `api` scope, which forge-app needs to post discussions and set commit "
                      "statuses: create a token with the api scope")
    assert [(r.method, r.path, r.status) for r in gitlab.requests] == [("GET", "/personal_access_tokens/self", 200)]


def test_unreachable_url(client, admin_headers) -> None:
    url = free_port_url()
    detail = _error(_create(client, admin_headers, url), "forge_unreachable")
    assert detail.startswith(f"cannot reach GitLab at {url}: ") and "refused" in detail


def test_not_a_gitlab_instance(client, admin_headers, gitlab: FakeGitLab) -> None:
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/wiki"), "not_gitlab")
    assert "does not answer like a GitLab instance" in detail


def test_reporter_role_cannot_set_statuses(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api"], access_level=20)
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_access")
    assert detail == "the token may not set commit statuses on acme/shop: its user needs at least the Developer role"


def test_project_not_found(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url, target="acme/secret"), "target_not_found")
    assert detail.startswith(f"project acme/secret was not found on {gitlab.url}, or the token cannot see it")


def test_group_not_found(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url, scope="group", target="other"), "target_not_found")
    assert detail.startswith("group other was not found")


def test_rate_limited_check(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    gitlab.inject("GET", r"/personal_access_tokens/self", 429, headers={"Retry-After": "30"})
    detail = _error(_create(client, admin_headers, gitlab.url), "forge_unavailable")
    assert "try again in 30 seconds" in detail


def test_a_redirecting_base_url_is_refused(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    """The reads would follow the redirect, but GitLab's writes would not, so the admin is told
    the right URL now rather than at the first review."""
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/moved"), "redirected")
    assert detail == f"{gitlab.url}/moved redirects to {gitlab.url}: use that as base_url"
    assert not gitlab.writes()


def test_the_fake_refuses_routes_outside_the_contract(gitlab: FakeGitLab) -> None:
    """The fake is only as good as this: an unknown route is 404 and a recorded violation."""
    import requests

    gitlab.add_token(TOKEN)
    gitlab.add_project("acme/shop", 321)
    r = requests.get(f"{gitlab.url}/api/v4/projects/321/hooks", headers={"PRIVATE-TOKEN": TOKEN}, timeout=10)
    assert r.status_code == 404
    assert gitlab.violations and "GET /projects/321/hooks" in gitlab.violations[0]
    gitlab.violations.clear()

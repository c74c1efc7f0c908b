"""`POST /api/v1/connections` for GitLab: the token is checked against the instance first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitlab.fake_gitlab import FakeGitLab, free_port_url

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


def test_project_connection_keeps_what_gitlab_said(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api", "read_repository"])
    r = _create(client, admin_headers, gitlab.url)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["info"]["project_id"] == 321 and doc["info"]["default_branch"] == "trunk"
    assert doc["info"]["web_url"] == "https://gitlab.example.com/acme/shop"
    assert doc["info"]["token_scopes"] == ["api", "read_repository"]
    assert doc["webhook_url"] == "http://testserver/webhooks/gitlab"
    listed = client.get("/api/v1/connections", headers=admin_headers).json()
    assert "token" not in listed[0] and "webhook_secret" not in listed[0]
    assert TOKEN not in client.get(f"/api/v1/connections/{doc['id']}", headers=admin_headers).text
    assert gitlab.outside_contract == ["GET /personal_access_tokens/self", "GET /projects/acme%2Fshop"]


def test_group_connection(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url + "/api/v4", scope="group", target="acme")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["group_id"] == 55 and r.json()["base_url"] == gitlab.url + "/api/v4"


def test_numeric_project_id(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url, target="321")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["path_with_namespace"] == "acme/shop"


def _error(r: Any, code: str) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == code, r.json()
    assert TOKEN not in r.text
    return r.json()["detail"]


def test_bad_token(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    detail = _error(_create(client, admin_headers, gitlab.url), "invalid_token")
    assert detail == (f"GitLab at {gitlab.url} rejected the token (401 Unauthorized): it is invalid, expired or "
                      "revoked")


def test_unreachable_url(client, admin_headers) -> None:
    url = free_port_url()
    detail = _error(_create(client, admin_headers, url), "forge_unreachable")
    assert detail.startswith(f"cannot reach GitLab at {url}: ") and "refused" in detail


def test_not_a_gitlab_instance(client, admin_headers, gitlab: FakeGitLab) -> None:
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/wiki"), "not_gitlab")
    assert "does not answer like a GitLab instance" in detail


def test_missing_api_scope_from_the_token_itself(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["read_api", "read_repository"])
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_scope")
    assert detail.startswith("the token has the scope(s) read_api, read_repository, but forge-app needs the `api` "
                             "scope")


def test_missing_api_scope_found_by_a_harmless_write(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    """Where GitLab cannot say a token's scopes, a write call does: 403 insufficient_scope."""
    gitlab.add_token(TOKEN, ["read_api"], self_endpoint=False)
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_scope")
    assert "needs the `api` scope" in detail
    probe = [r for r in gitlab.requests if r.method == "POST"]
    assert [r.path for r in probe] == ["/projects/321/statuses/" + "0" * 40]


def test_write_probe_passes_with_api_scope(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api"], self_endpoint=False)
    r = _create(client, admin_headers, gitlab.url)
    assert r.status_code == 201, r.text
    assert r.json()["info"]["token_scopes"] is None
    assert gitlab.statuses == {}  # the probe changed nothing


def test_reporter_role_cannot_set_statuses(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api"], self_endpoint=False, access_level=20)
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_access")
    assert "Developer role" in detail


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
    gitlab.inject("GET", r"^/personal_access_tokens/self$", 429, headers={"Retry-After": "30"})
    detail = _error(_create(client, admin_headers, gitlab.url), "forge_unavailable")
    assert "try again in 30 seconds" in detail


def test_a_redirecting_base_url_is_refused(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    """GitLab's writes would not follow the redirect, so the admin is told the right URL now."""
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/moved"), "redirected")
    assert detail == f"{gitlab.url}/moved redirects to {gitlab.url}: use that as base_url"

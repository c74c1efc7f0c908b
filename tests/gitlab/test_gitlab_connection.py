"""`POST /api/v1/connections` for GitLab: the token is checked against the instance first.

A project connection is checked with one request of the API contract, a status write on
a commit that cannot exist (`POST /projects/:id/statuses/<40 zeros>`); the fake answers
anything outside the contract with 404 and fails the test, except the group check.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitlab.fake_gitlab import FakeGitLab, free_port_url

PROBE = "/statuses/" + "0" * 40

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


def test_project_connection_is_checked_with_one_contract_request(client, admin_headers, gitlab: FakeGitLab,
                                                                project) -> None:
    gitlab.add_token(TOKEN, ["api", "read_repository"])
    r = _create(client, admin_headers, gitlab.url)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["info"]["checked"] == "commit status write"
    assert doc["info"]["api_url"] == gitlab.url + "/api/v4"
    assert doc["webhook_url"] == "http://testserver/webhooks/gitlab"
    assert _paths(gitlab) == ["POST /projects/acme%2Fshop" + PROBE]
    assert gitlab.requests[0].body == {"state": "pending", "name": "forge-app"}
    assert gitlab.requests[0].status == 404  # 404 Commit Not Found: the write itself was allowed
    assert gitlab.outside_contract == [] and gitlab.statuses == {}  # the probe changed nothing
    listed = client.get("/api/v1/connections", headers=admin_headers).json()
    assert "token" not in listed[0] and "webhook_secret" not in listed[0]
    assert TOKEN not in client.get(f"/api/v1/connections/{doc['id']}", headers=admin_headers).text


def test_group_connection(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url + "/api/v4", scope="group", target="acme")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["group_id"] == 55 and r.json()["base_url"] == gitlab.url + "/api/v4"
    # The scope probe stays in the contract (project 0 never exists); the group GET is the one exception.
    assert _paths(gitlab) == ["POST /projects/0" + PROBE, "GET /groups/acme"]
    assert gitlab.outside_contract == ["GET /groups/acme"]


def test_group_connection_without_the_api_scope(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["read_api"])
    detail = _error(_create(client, admin_headers, gitlab.url, scope="group", target="acme"), "insufficient_scope")
    assert "needs to post discussions and set commit statuses" in detail
    assert _paths(gitlab) == ["POST /projects/0" + PROBE]


def test_numeric_project_id(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    r = _create(client, admin_headers, gitlab.url, target="321")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["project_id"] == 321  # webhooks carry the id: they find this connection
    assert _paths(gitlab) == ["POST /projects/321" + PROBE]


def _error(r: Any, code: str) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == code, r.json()
    assert TOKEN not in r.text
    return r.json()["detail"]


def test_bad_token_is_a_401_on_the_probe(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    detail = _error(_create(client, admin_headers, gitlab.url), "invalid_token")
    assert detail == (f"GitLab at {gitlab.url} rejected the token (401 Unauthorized): it is invalid, expired or "
                      "revoked")
    assert [(r.method, r.path, r.status) for r in gitlab.requests] == [
        ("POST", "/projects/acme%2Fshop" + PROBE, 401)]


def test_missing_api_scope_is_a_403_on_the_probe(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["read_api", "read_repository"])
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_scope")
    assert detail == ("the token lacks the `api` scope, which forge-app needs to post discussions and set commit "
                      "statuses: create a token with the api scope")
    assert [(r.method, r.path, r.status) for r in gitlab.requests] == [
        ("POST", "/projects/acme%2Fshop" + PROBE, 403)]
    assert gitlab.statuses == {}


def test_unreachable_url(client, admin_headers) -> None:
    url = free_port_url()
    detail = _error(_create(client, admin_headers, url), "forge_unreachable")
    assert detail.startswith(f"cannot reach GitLab at {url}: ") and "refused" in detail


def test_not_a_gitlab_instance(client, admin_headers, gitlab: FakeGitLab) -> None:
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/wiki"), "not_gitlab")
    assert "does not answer like a GitLab instance" in detail


def test_a_probe_answered_2xx_counts_as_valid(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN)
    gitlab.inject("POST", r"/statuses/", 201, body={"id": 1, "status": "pending", "name": "forge-app"})
    r = _create(client, admin_headers, gitlab.url)
    assert r.status_code == 201, r.text


def test_reporter_role_cannot_set_statuses(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    gitlab.add_token(TOKEN, ["api"], access_level=20)
    detail = _error(_create(client, admin_headers, gitlab.url), "insufficient_access")
    assert detail == ("the token may not set commit statuses on acme/shop (403 Forbidden): its user needs at least "
                      "the Developer role")


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
    gitlab.inject("POST", r"/statuses/", 429, headers={"Retry-After": "30"})
    detail = _error(_create(client, admin_headers, gitlab.url), "forge_unavailable")
    assert "try again in 30 seconds" in detail


def test_a_redirecting_base_url_is_refused(client, admin_headers, gitlab: FakeGitLab, project) -> None:
    """GitLab's writes would not follow the redirect, so the admin is told the right URL now; the
    write is not resent as a GET to the new address (a route GitLab's API does not have)."""
    gitlab.add_token(TOKEN)
    detail = _error(_create(client, admin_headers, gitlab.url + "/moved"), "redirected")
    assert detail == f"{gitlab.url}/moved redirects to {gitlab.url}: use that as base_url"
    assert gitlab.requests == []  # only the fake's /moved address saw the probe


def test_the_fake_refuses_routes_outside_the_contract(gitlab: FakeGitLab) -> None:
    """The fake is only as good as this: an unknown route is 404 and a recorded violation."""
    import requests

    gitlab.add_token(TOKEN)
    gitlab.add_project("acme/shop", 321)
    r = requests.get(f"{gitlab.url}/api/v4/projects/321", headers={"PRIVATE-TOKEN": TOKEN}, timeout=10)
    assert r.status_code == 404
    assert gitlab.violations and "GET /projects/321" in gitlab.violations[0]
    gitlab.violations.clear()

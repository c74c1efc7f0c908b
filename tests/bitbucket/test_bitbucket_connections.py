"""`POST /api/v1/connections` for Bitbucket: the token is checked against what it is for, with one
request: the repository GET of the API description, or (workspace connections only) the
allow-listed `GET /repositories/{workspace}`."""

from __future__ import annotations

import pytest

from tests.bitbucket.bitbucket_scenario import (
    HEAD_FILES,
    PR,
    REPO,
    SOURCE_BRANCH,
    WEBHOOK_SECRET,
    build_world,
    scan,
    upload,
    upload_body,
)
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain
from tests.support.live_server import free_port


@pytest.fixture
def world(fake: FakeBitbucket):
    return build_world(fake)


def _create(client, admin_headers, base_url: str, scope: str, target: str, token: str):
    return client.post("/api/v1/connections", headers=admin_headers, json={
        "forge": "bitbucket", "base_url": base_url, "scope": scope, "target": target, "token": token,
        "webhook_secret": WEBHOOK_SECRET})


@pytest.mark.parametrize("scope, target, checked", [("workspace", "acme", "/repositories/acme"),
                                                     ("repository", REPO, f"/repositories/{REPO}")])
def test_a_good_token_is_saved_and_never_shown(scope, target, checked, client, admin_headers, fake, world) -> None:
    fake.grant("good-token-0123456789", scope, target)
    r = _create(client, admin_headers, fake.base_url, scope, target, "good-token-0123456789")
    assert r.status_code == 201, r.text
    assert r.json()["webhook_url"].endswith("/webhooks/bitbucket")
    assert r.json()["info"]["scopes"] and "pullrequest:write" in r.json()["info"]["scopes"]
    assert [s.path for s in fake.seen] == [checked]
    assert fake.outside_description == ([] if scope == "repository" else [f"GET {checked}"])
    assert fake.seen[0].headers["authorization"] == "Bearer good-token-0123456789"
    listed = client.get("/api/v1/connections", headers=admin_headers)
    assert "good-token" not in listed.text and WEBHOOK_SECRET not in listed.text


def test_an_invalid_token_is_refused_with_a_sentence(client, admin_headers, fake, world) -> None:
    r = _create(client, admin_headers, fake.base_url, "workspace", "acme", "revoked-token-0123456789")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_token"
    assert "invalid, expired or revoked" in r.json()["detail"] and "revoked-token" not in r.text


def test_a_token_without_pull_request_write_is_refused(client, admin_headers, fake, world) -> None:
    fake.grant("read-only-0123456789", "repository", REPO, scopes=("repository", "pullrequest"))
    r = _create(client, admin_headers, fake.base_url, "repository", REPO, "read-only-0123456789")
    assert r.status_code == 400 and r.json()["error"] == "insufficient_scope"
    assert "pullrequest:write" in r.json()["detail"]


@pytest.mark.parametrize("scope, target", [("workspace", "acme"), ("repository", REPO)])
def test_without_a_scopes_header_no_probe_is_sent_and_a_later_403_tells(scope, target, client, app, storage,
                                                                        admin_headers, fake, world) -> None:
    """No pull request list probe (outside the description): the connection is saved with a warning,
    and the first refused request of a publish stops the job with a sentence naming the scope."""
    fake.scope_headers = False
    fake.grant("repo-only-0123456789", scope, target, scopes=("repository",))
    r = _create(client, admin_headers, fake.base_url, scope, target, "repo-only-0123456789")
    assert r.status_code == 201, r.text
    assert r.json()["info"]["scopes"] is None and "pullrequest:write" in r.json()["info"]["warnings"][0]
    assert len(fake.seen) == 1 and not fake.requests("GET", "/pullrequests")
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, upload_body(world.head, scan(HEAD_FILES), branch=SOURCE_BRANCH, pull_request=PR))
    drain(app)
    (job,) = [j for j in storage.jobs() if j["status"] == "failed"]
    assert "(403)" in job["last_error"] and "pullrequest:write" in job["last_error"]
    assert "repo-only" not in job["last_error"]


def test_a_repository_outside_the_tokens_scope_is_refused(client, admin_headers, fake, world) -> None:
    fake.grant("widgets-only-0123456789", "repository", REPO)
    r = _create(client, admin_headers, fake.base_url, "repository", "acme/other", "widgets-only-0123456789")
    assert r.status_code == 400 and r.json()["error"] == "not_in_scope"
    assert "acme/other" in r.json()["detail"] and "only reaches the repository" in r.json()["detail"]
    r = _create(client, admin_headers, fake.base_url, "workspace", "elsewhere", "widgets-only-0123456789")
    assert r.status_code == 400 and r.json()["error"] == "not_in_scope"


def test_an_unreachable_bitbucket_is_a_clear_400(client, admin_headers) -> None:
    r = _create(client, admin_headers, f"http://127.0.0.1:{free_port()}/2.0", "workspace", "acme", "t-0123456789")
    assert r.status_code == 400 and r.json()["error"] == "forge_unreachable"
    assert "could not be reached" in r.json()["detail"]

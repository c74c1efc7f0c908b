"""`POST /webhooks/bitbucket` with the recorded deliveries: signatures, redeliveries, events."""

from __future__ import annotations

import json

import pytest

from tests.bitbucket.bitbucket_scenario import PR, REPO, SOURCE_BRANCH, build_world, connect, delivery, sign
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain


@pytest.fixture
def world(fake: FakeBitbucket):
    return build_world(fake)


def _post(client, body: bytes, headers: dict[str, str]):
    return client.post("/webhooks/bitbucket", content=body, headers=headers)


def test_bad_missing_or_uncovered_signatures_get_the_same_401(client, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "repository")
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    wrong = {**headers, "X-Hub-Signature": sign(body, "not-the-secret")}
    missing = {k: v for k, v in headers.items() if k != "X-Hub-Signature"}
    tampered_body = body.replace(b'"aha"', b'"evil"')
    # A repository outside the repository token's scope: no connection covers it.
    other_body, other_headers = delivery("pullrequest_created", repo="acme/other", head=world.head, base=world.base)
    answers = [_post(client, body, wrong), _post(client, body, missing), _post(client, tampered_body, headers),
               _post(client, other_body, other_headers)]
    assert [r.status_code for r in answers] == [401, 401, 401, 401]
    assert len({r.text for r in answers}) == 1
    assert answers[0].json()["error"] == "invalid_signature"
    assert _post(client, body, headers).status_code == 202


def test_malformed_json_is_400_and_unknown_events_are_ignored(client, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "workspace")
    r = _post(client, b'{"repository": ', {"X-Event-Key": "pullrequest:created", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    body, headers = delivery("pullrequest_comment_created", head=world.head, base=world.base)
    r = _post(client, body, headers)
    assert r.status_code == 202 and r.json()["status"] == "ignored"


def test_redelivery_is_acknowledged_once(client, app, storage, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "workspace")
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    assert _post(client, body, headers).json()["status"] == "accepted"
    assert _post(client, body, headers).json()["status"] == "duplicate"
    assert len(storage.jobs(kind="bitbucket_event")) == 1
    drain(app)
    assert len(fake.requests("GET", "/commit/")) == 1


def test_short_hashes_are_resolved_before_anything_is_keyed(client, app, storage, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "repository")
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    assert world.head[:12].encode() in body and world.head.encode() not in body
    _post(client, body, headers)
    drain(app)
    repo = storage.find_repository("bitbucket", REPO)
    meta = storage.forge_object(repo.id, f"pr:{PR}", "pull_request")
    assert meta["head_sha"] == world.head and len(meta["head_sha"]) == 40
    assert meta["source_branch"] == SOURCE_BRANCH and meta["state"] == "OPEN"
    assert repo.connection_id is not None
    # The same short hash again: answered from what was learnt, no second lookup.
    body, headers = delivery("pullrequest_updated.reviewer-added", head=world.head, base=world.base)
    _post(client, body, headers)
    drain(app)
    assert len(fake.requests("GET", f"/commit/{world.head[:12]}")) == 1


@pytest.mark.parametrize("fixture, state", [("pullrequest_fulfilled", "MERGED"), ("pullrequest_rejected", "DECLINED")])
def test_closing_events_record_the_state(fixture, state, client, app, storage, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "workspace")
    body, headers = delivery(fixture, head=world.head, base=world.base)
    assert _post(client, body, headers).status_code == 202
    drain(app)
    repo = storage.find_repository("bitbucket", REPO)
    assert storage.forge_object(repo.id, f"pr:{PR}", "pull_request")["state"] == state
    assert storage.count_jobs("failed") == 0


def test_push_to_the_main_branch_only(client, app, storage, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "workspace")
    body, headers = delivery("repo_push", head=world.fix, destination_branch="main")
    assert _post(client, body, headers).json()["status"] == "accepted"
    drain(app)
    repo = storage.find_repository("bitbucket", REPO)
    assert repo.default_branch == "main"  # learnt from GET /repositories/{workspace}/{repo_slug}
    assert storage.forge_object(repo.id, "branch:main", "head") == {"sha": world.fix}
    body, headers = delivery("repo_push", head=world.head, destination_branch="feature/elsewhere")
    assert _post(client, body, headers).json()["status"] == "ignored"
    assert storage.forge_object(repo.id, "branch:main", "head") == {"sha": world.fix}


def test_body_limit_is_enforced(client, admin_headers, fake, world) -> None:
    headers = {"X-Event-Key": "repo:push", "Content-Length": str(26 * 1024 * 1024)}
    r = client.post("/webhooks/bitbucket", content=b"{}", headers=headers)
    assert r.status_code == 413


def test_a_deleted_connection_stops_deliveries(client, app, storage, admin_headers, fake, world) -> None:
    connect(client, admin_headers, fake, "workspace")
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    (connection,) = storage.connections("bitbucket")
    assert client.delete(f"/api/v1/connections/{connection.id}", headers=admin_headers).status_code == 204
    assert _post(client, body, headers).status_code == 401
    assert json.loads(_post(client, body, headers).text)["error"] == "invalid_signature"

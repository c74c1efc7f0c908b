"""`POST /webhooks/bitbucket` with the recorded deliveries: signatures, redeliveries, events."""

from __future__ import annotations

import json

import pytest

from tests.bitbucket.bitbucket_scenario import (
    PR,
    REPO,
    SOURCE_BRANCH,
    build_world,
    connect,
    delivery,
    sign,
    upload,
    upload_body,
)
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
    assert len(fake.requests("GET", f"/pullrequests/{PR}")) == 1  # the one job asked once


def _head_meta(storage, world) -> dict:
    repo = storage.find_repository("bitbucket", REPO)
    return storage.forge_object(repo.id, f"pr:{PR}", "pull_request")


def test_a_short_hash_known_from_a_scan_needs_no_request(client, app, storage, admin_headers, fake, world) -> None:
    """CI uploads full SHAs: the webhook's 12 characters are resolved from the scan, with no commit
    lookup and no pull request request at all."""
    connect(client, admin_headers, fake, "repository")
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, upload_body(world.base, [], branch="main", pull_request=None))
    upload(client, token, upload_body(world.head, [], branch=SOURCE_BRANCH, pull_request=PR))
    drain(app)  # publishes the scan
    seen = len(fake.seen)
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    assert world.head[:12].encode() in body and world.head.encode() not in body
    _post(client, body, headers)
    drain(app)
    meta = _head_meta(storage, world)
    assert meta["head_sha"] == world.head and meta["source_branch"] == SOURCE_BRANCH and meta["state"] == "OPEN"
    assert fake.seen[seen:] == []  # the event job sent nothing at all
    assert not fake.requests("GET", "/commit/") and fake.outside_description == []
    assert storage.count_jobs("failed") == 0


def test_an_ambiguous_scan_prefix_is_not_trusted(storage) -> None:
    repo = storage.ensure_repository("bitbucket", REPO)
    other = storage.ensure_repository("bitbucket", "acme/other")
    assert storage.scanned_commit_with_prefix(repo.id, "abcdef012345") is None
    from storage import NewScan

    def record(repository_id: int, sha: str) -> None:
        storage.record_scan(NewScan(repository_id, sha, "main", None, None, True, None, [], [], {}, [], False))

    record(repo.id, "abcdef012345" + "0" * 28)
    record(other.id, "abcdef012345" + "1" * 28)  # another repository's scan does not count
    assert storage.scanned_commit_with_prefix(repo.id, "ABCDEF012345") == "abcdef012345" + "0" * 28
    record(repo.id, "abcdef012345" + "2" * 28)
    assert storage.scanned_commit_with_prefix(repo.id, "abcdef012345") is None  # two commits match
    assert storage.scanned_commit_with_prefix(repo.id, "abcdef0123450000") == "abcdef012345" + "0" * 28
    assert storage.scanned_commit_with_prefix(repo.id, "not-hex%") is None


def test_a_short_hash_from_the_pull_request_when_it_carries_the_full_one(client, app, storage, admin_headers, fake,
                                                                       world) -> None:
    connect(client, admin_headers, fake, "workspace")
    fake.full_hashes_in_pull_requests = True
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    _post(client, body, headers)
    drain(app)
    assert _head_meta(storage, world)["head_sha"] == world.head
    assert len(fake.requests("GET", f"/pullrequests/{PR}")) == 1 and not fake.requests("GET", "/commit/")
    assert fake.outside_description == ["GET /repositories/acme"]  # the connection check only


def test_the_commit_lookup_is_the_last_resort(client, app, storage, admin_headers, fake, world) -> None:
    """No scan knows the hash and the pull request answer has 12 characters too (as on Bitbucket):
    only then `GET .../commit/{hash}`, once; what it said is remembered."""
    connect(client, admin_headers, fake, "repository")
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    _post(client, body, headers)
    drain(app)
    meta = _head_meta(storage, world)
    assert meta["head_sha"] == world.head and len(meta["head_sha"]) == 40
    assert [(s.method, s.path) for s in fake.seen[1:]] == [
        ("GET", f"/repositories/{REPO}/pullrequests/{PR}"), ("GET", f"/repositories/{REPO}/commit/{world.head[:12]}")]
    assert fake.outside_description == [f"GET /repositories/{REPO}/commit/{world.head[:12]}"]
    # The same short hash again: answered from what was learnt, no second lookup.
    body, headers = delivery("pullrequest_updated.reviewer-added", head=world.head, base=world.base)
    _post(client, body, headers)
    drain(app)
    assert len(fake.requests("GET", f"/commit/{world.head[:12]}")) == 1
    assert len(fake.requests("GET", f"/pullrequests/{PR}")) == 1


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

"""`POST /webhooks/github`: signatures, de-duplication, each event's effect, uninstalling."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from forge_app.forges.github.sansio import Refused, check_delivery, signature_matches
from forge_app.web.app import create_app
from tests.conftest import FIXTURES, drain
from tests.github.gh_helpers import (
    INSTALLATION,
    PR,
    REPO,
    deliver,
    installation_event,
    open_pull_request,
    payload,
    pull_request_event,
    rerequest_event,
    sha,
)


def test_signature_vectors() -> None:
    vectors = json.loads((FIXTURES / "signature-vectors.json").read_text())
    docs = vectors["github_docs_vector"]
    assert signature_matches(docs["payload"].encode(), docs["X-Hub-Signature-256"], docs["secret"])
    assert not signature_matches(docs["payload"].encode() + b" ", docs["X-Hub-Signature-256"], docs["secret"])
    for vector in vectors["github"]:
        body = (FIXTURES / vector["file"]).read_bytes()
        assert signature_matches(body, vector["X-Hub-Signature-256"], vectors["secret"])
        assert not signature_matches(body, vector["X-Hub-Signature-256"], "another secret")
    assert not signature_matches(b"x", None, "s") and not signature_matches(b"x", "sha1=abc", "s")


def test_real_delivery_bytes_are_accepted(settings, storage) -> None:
    """The exact bytes of a fixture with its precomputed signature, through the route."""
    vectors = json.loads((FIXTURES / "signature-vectors.json").read_text())
    vector = vectors["github"][0]
    signed = dataclasses.replace(settings, github_webhook_secret=vectors["secret"])
    with TestClient(create_app(signed, storage, run_worker=False)) as c:
        response = c.post("/webhooks/github", content=(FIXTURES / vector["file"]).read_bytes(), headers={
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "X-Hub-Signature-256": vector["X-Hub-Signature-256"], "Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    [job] = storage.jobs(kind="github_event")
    assert job["payload"]["number"] == 2 and job["group_key"] == "gh-installation:1"


def test_bad_or_missing_signature_is_refused(client, storage) -> None:
    body = pull_request_event("opened", sha("x"))
    response = deliver(client, "pull_request", body, secret="not-the-secret")
    assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
    response = deliver(client, "pull_request", body, sign=False)
    assert response.status_code == 401
    assert storage.jobs() == []


def test_no_webhook_secret_configured_answers_503(settings, storage) -> None:
    bare = dataclasses.replace(settings, github_webhook_secret=None)
    with TestClient(create_app(bare, storage, run_worker=False)) as c:
        response = deliver(c, "ping", payload("ping/default"))
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.json()["detail"]


def test_replayed_delivery_is_processed_once(client, app, storage) -> None:
    body = installation_event("created")
    first = deliver(client, "installation", body, delivery="d-1")
    again = deliver(client, "installation", body, delivery="d-1")
    assert first.status_code == 202 and again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(storage.jobs(kind="github_event")) == 1
    drain(app)
    assert storage.find_repository("github", REPO).installation_id == INSTALLATION


def test_malformed_json_unknown_events_and_ping(client, storage) -> None:
    assert deliver(client, "pull_request", b"{not json").status_code == 400
    assert deliver(client, "pull_request", b"[1, 2]").status_code == 400
    unknown = deliver(client, "pull_request_review_thread", payload("pull_request_review_thread/resolved"))
    assert unknown.status_code == 202 and unknown.json()["status"] == "ignored"
    ignored = deliver(client, "check_run", payload("check_run/created"))
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"
    ping = deliver(client, "ping", payload("ping/with-app_id"))
    assert ping.status_code == 200
    assert storage.jobs() == []


def test_installation_lifecycle(client, app, storage) -> None:
    deliver(client, "installation", installation_event("created", repos=[REPO, "octo/two"]))
    added = payload("installation_repositories/added")
    added["installation"]["id"] = INSTALLATION
    added["repositories_added"][0]["full_name"] = "octo/three"
    deliver(client, "installation_repositories", added)
    removed = payload("installation_repositories/removed")
    removed["installation"]["id"] = INSTALLATION
    removed["repositories_removed"][0]["full_name"] = "octo/two"
    deliver(client, "installation_repositories", removed)
    drain(app)
    linked = {name: storage.find_repository("github", name).installation_id
              for name in (REPO, "octo/two", "octo/three")}
    assert linked == {REPO: INSTALLATION, "octo/two": None, "octo/three": INSTALLATION}

    deliver(client, "installation", installation_event("suspend"))
    drain(app)
    assert storage.github_installation(INSTALLATION).suspended
    deliver(client, "installation", installation_event("unsuspend"))
    deliver(client, "installation", installation_event("new_permissions_accepted"))
    drain(app)
    assert storage.github_installation(INSTALLATION).active


def test_uninstall_wipes_tokens_and_cancels_pending_jobs(client, app, storage, fake_github, tmp_path: Path) -> None:
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": "x = eval(y)\n"}, head_sha=sha("u1"),
                      rules=["python.lang.security.eval"])
    drain(app)  # publishes: a token is now cached
    assert storage.github_token(INSTALLATION) is not None
    # More work arrives, then the org uninstalls the app before it runs.
    deliver(client, "pull_request", pull_request_event("synchronize", sha("u2")))
    token = storage.create_upload_token("github", REPO)
    client.post("/api/v1/scans", headers={"Authorization": f"Bearer {token}"},
                json={"repository": REPO, "commit": sha("u2"), "branch": "feature", "pull_request": PR,
                      "findings": []})
    pending = storage.jobs(status="queued")
    assert {j["kind"] for j in pending} >= {"github_event", "publish_scan"}
    mark = fake_github.mark()
    response = deliver(client, "installation", installation_event("deleted"))
    assert response.status_code == 202
    assert storage.github_token(INSTALLATION) is None
    cancelled = {j["kind"] for j in storage.jobs(status="cancelled")}
    assert cancelled == {"github_event", "publish_scan"}
    drain(app)
    assert fake_github.since(mark) == []  # nothing sent with a dead installation
    assert storage.github_installation(INSTALLATION).deleted
    assert storage.find_repository("github", REPO).installation_id is None


def test_pull_request_events_are_recorded(client, app, storage) -> None:
    deliver(client, "installation", installation_event("created"))
    deliver(client, "pull_request", pull_request_event("opened", sha("p1")))
    drain(app)
    repo = storage.find_repository("github", REPO)
    assert storage.github_pull_request(repo.id, PR).head_sha == sha("p1")
    assert repo.default_branch == "main"

    edited = pull_request_event("edited", sha("p1"), base_ref="develop", variant=".derived")
    title_only = deliver(client, "pull_request", edited)
    assert title_only.json()["status"] == "ignored"  # only a base change matters
    edited["changes"]["base"] = {"ref": {"from": "main"}, "sha": {"from": sha("b")}}
    assert deliver(client, "pull_request", edited).status_code == 202
    drain(app)
    assert storage.github_pull_request(repo.id, PR).base_ref == "develop"

    deliver(client, "pull_request", pull_request_event("closed", sha("p1"), variant=".merged.derived"))
    drain(app)
    closed = storage.github_pull_request(repo.id, PR)
    assert closed.state == "closed" and closed.merged
    deliver(client, "pull_request", pull_request_event("reopened", sha("p1")))
    drain(app)
    assert storage.github_pull_request(repo.id, PR).state == "open"


def test_push_to_default_branch_records_it(client, app, storage) -> None:
    push = payload("push/with-new-branch")
    push["repository"]["full_name"] = REPO
    push["repository"]["default_branch"] = "trunk"
    push["ref"] = "refs/heads/trunk"
    push["installation"] = {"id": INSTALLATION}
    assert deliver(client, "push", push).status_code == 202
    tag = payload("push/with-installation")  # a deleted tag: ignored
    assert deliver(client, "push", tag).json()["status"] == "ignored"
    drain(app)
    assert storage.find_repository("github", REPO).default_branch == "trunk"


@pytest.mark.parametrize("event", ["check_suite", "check_run"])
def test_rerequested_check_publishes_again_on_a_new_run(client, app, storage, fake_github, tmp_path: Path,
                                                         event: str) -> None:
    head = sha("rerun")
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": "x = eval(y)\n"}, head_sha=head,
                      rules=["python.lang.security.eval"])
    drain(app)
    [first] = fake_github.runs_of(REPO, head)
    assert deliver(client, event, rerequest_event(event, head)).status_code == 202
    drain(app)
    runs = fake_github.runs_of(REPO, head)
    assert len(runs) == 2 and runs[1]["conclusion"] == "success" and len(runs[1]["annotations"]) == 1
    assert first["_updates"] == 1
    assert len(fake_github.comments_of(REPO, PR)) == 1  # nothing posted twice
    other = rerequest_event("check_run", head)
    other["check_run"]["name"] = "another-tool"
    assert deliver(client, "check_run", other).json()["status"] == "ignored"


def test_check_delivery_is_pure_and_checks_the_signature_before_the_headers() -> None:
    import hashlib
    import hmac

    body = b'{"zen": "Keep it logically awesome."}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    headers = {"x-hub-signature-256": good, "x-github-event": "ping", "x-github-delivery": "d-1"}
    delivery = check_delivery(headers, body, "s3cret", whose="this app's webhook secret")
    assert (delivery.event, delivery.delivery_id) == ("ping", "d-1")
    for changed, status, code in (({"x-hub-signature-256": "sha256=00"}, 401, "invalid_signature"),
                                  ({"x-github-event": "", "x-github-delivery": ""}, 400, "bad_request"),
                                  ({"x-github-delivery": " "}, 400, "bad_request")):
        with pytest.raises(Refused) as refused:
            check_delivery({**headers, **changed}, body, "s3cret", whose="the listing's secret")
        assert (refused.value.status, refused.value.code) == (status, code)
    with pytest.raises(Refused) as refused:  # unsigned: nothing else is looked at
        check_delivery({"x-github-event": ""}, body, "s3cret", whose="the listing's secret")
    assert refused.value.status == 401 and "the listing's secret" in refused.value.detail

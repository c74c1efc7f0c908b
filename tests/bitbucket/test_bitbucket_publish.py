"""Publishing PR scans on the fake Bitbucket: batching, retries, crash recovery, scope."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.bitbucket.bitbucket_scenario import (
    BASE_FILES,
    EVAL,
    FIX_FILES,
    HEAD_FILES,
    NEW_RULES,
    OPEN,
    PR,
    REPO,
    RULES,
    SOURCE_BRANCH,
    World,
    build_world,
    connect,
    scan,
    upload,
    upload_body,
)
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain


def _scans(client, storage, world: World) -> None:
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, upload_body(world.base, scan(BASE_FILES, RULES), branch="main", pull_request=None))
    upload(client, token, upload_body(world.head, scan(HEAD_FILES), branch=SOURCE_BRANCH, pull_request=PR))


def _inline(fake: FakeBitbucket) -> list[dict]:
    return [c for c in fake.pr_comments(REPO, PR) if c.get("inline")]


def _publish_job(storage) -> dict:
    (job,) = storage.jobs(kind="publish_scan")
    return job


def _run_due_at(app, when: float) -> None:
    asyncio.run(app.state.worker.run_once(now=when))


def test_250_new_findings_are_annotated_100_at_a_time(client, app, storage, admin_headers, fake) -> None:
    fake.add_repo(REPO)
    legacy = {"app/legacy.py": "".join(f"handle_{i} = open('data/{i}.txt')\n" for i in range(250))}
    base = fake.add_commit(REPO, legacy)
    head = fake.add_commit(REPO, {**legacy, "README.md": "Widgets.\n"})
    fake.open_pr(REPO, PR, source_branch=SOURCE_BRANCH, head=head, base=base)
    connect(client, admin_headers, fake, "workspace")
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, upload_body(base, scan(legacy, RULES), branch="main", pull_request=None))
    result = upload(client, token, upload_body(head, scan({**legacy, "README.md": "Widgets.\n"}, NEW_RULES),
                                               branch=SOURCE_BRANCH, pull_request=PR))
    assert result["counts"]["new"] == 250
    drain(app)
    batches = [len(s.json()) for s in fake.requests("POST", "/annotations")]
    assert batches == [100, 100, 50]
    annotations = fake.annotations[(REPO, head, "forge-app")]
    assert len(annotations) == 250
    assert all(0 < len(a["summary"]) <= 450 and a["annotation_type"] == "VULNERABILITY" for a in annotations.values())
    assert not _inline(fake)  # nothing is on an added line
    (summary,) = fake.pr_comments(REPO, PR)
    assert "and 50 more" in summary["content"]["raw"]
    assert fake.reports[(REPO, head, "forge-app")]["result"] == "PASSED"
    assert fake.statuses[(REPO, head)]["forge-app"]["state"] == "SUCCESSFUL"


def test_rate_limit_waits_for_retry_after_then_finishes(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "repository")
    fake.fail("POST", rf"/pullrequests/{PR}/comments$", 429, headers={"Retry-After": "7"})
    _scans(client, storage, world)
    drain(app)
    job = _publish_job(storage)
    assert job["status"] == "queued" and "rate limit" in job["last_error"]
    assert 5 <= job["run_at"] - time.time() <= 8
    _run_due_at(app, job["run_at"] + 1)
    assert _publish_job(storage)["status"] == "done"
    assert len(_inline(fake)) == 1  # what the request budget allows (the other finding: summary, annotation)


def test_a_crash_between_posting_and_recording_posts_nothing_twice(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "workspace")
    for i in range(3):
        fake.add_comment(REPO, PR, f"a person's comment {i}")
    fake.max_pagelen = 2  # the comment list takes several pages
    # The inline comment gets through, then the summary's POST fails: the job is retried.
    fake.fail("POST", rf"/pullrequests/{PR}/comments$", 502, after=1)
    _scans(client, storage, world)
    drain(app)
    job = _publish_job(storage)
    assert job["status"] == "queued" and "502" in job["last_error"]
    assert len(_inline(fake)) == 1
    _run_due_at(app, job["run_at"] + 1)
    assert _publish_job(storage)["status"] == "done"
    inline = _inline(fake)
    assert sorted(c["inline"]["to"] for c in inline) == [15]  # not posted twice
    assert len([c for c in fake.pr_comments(REPO, PR) if "forge-app" in c["content"]["raw"]
                and not c.get("inline")]) == 1  # one summary
    listed = fake.requests("GET", f"/pullrequests/{PR}/comments")
    assert len(listed) == 2 and "page=2" in listed[1].query  # the inline comment was on the second page
    repo = storage.find_repository("bitbucket", REPO)
    assert len(storage.review_comments(repo.id, PR)) == 1


def test_a_revoked_token_gives_up_with_a_clear_message(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    token = connect(client, admin_headers, fake, "workspace")
    del fake.grants[token]
    _scans(client, storage, world)
    drain(app)
    job = _publish_job(storage)
    assert job["status"] == "failed"
    assert "refused the access token" in job["last_error"] and token not in job["last_error"]


def test_missing_scope_gives_up_naming_what_bitbucket_wants(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    token = connect(client, admin_headers, fake, "repository")
    fake.grants[token].scopes = ("repository", "pullrequest")
    _scans(client, storage, world)
    drain(app)
    job = _publish_job(storage)
    assert job["status"] == "failed" and "403" in job["last_error"] and "pullrequest:write" in job["last_error"]


def test_server_errors_retry(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "workspace")
    fake.fail("GET", rf"/pullrequests/{PR}/diff$", 503)
    _scans(client, storage, world)
    drain(app)
    job = _publish_job(storage)
    assert job["status"] == "queued" and "503" in job["last_error"]
    _run_due_at(app, job["run_at"] + 1)
    assert _publish_job(storage)["status"] == "done" and len(_inline(fake)) == 1


def test_a_repository_outside_a_repository_tokens_scope_is_not_published(client, app, storage, admin_headers,
                                                                          fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "repository")  # covers acme/widgets only
    fake.open_pr("acme/other", PR, source_branch=SOURCE_BRANCH, head=world.head, base=world.base)
    token = storage.create_upload_token("bitbucket", "acme/other")
    upload(client, token, upload_body(world.head, scan(HEAD_FILES), branch=SOURCE_BRANCH, pull_request=PR))
    before = len(fake.seen)
    drain(app)
    assert len(fake.seen) == before
    assert _publish_job(storage)["status"] == "done"


def test_a_deleted_summary_is_posted_again(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "workspace")
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, upload_body(world.base, scan(BASE_FILES, RULES), branch="main", pull_request=None))
    pr_scan = upload_body(world.head, scan(HEAD_FILES), branch=SOURCE_BRANCH, pull_request=PR)
    upload(client, token, pr_scan)
    drain(app)
    (summary,) = [c for c in fake.pr_comments(REPO, PR) if not c.get("inline")]
    summary["deleted"] = True
    # The summary is only rewritten when its content changes: a stricter board changes it.
    client.put("/api/v1/policies", headers=admin_headers, json={"default": "block", "rules": {}})
    upload(client, token, pr_scan)
    drain(app)
    live = [c for c in fake.pr_comments(REPO, PR) if not c.get("inline") and not c["deleted"]]
    assert len(live) == 1 and OPEN in live[0]["content"]["raw"]


@pytest.mark.parametrize("kind", ["workspace", "repository"])
def test_request_cost_of_a_first_pr_scan(kind, client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, kind)
    client.put("/api/v1/policies", headers=admin_headers, json={"default": "comment", "rules": {EVAL: "block"}})
    before = len(fake.seen)
    _scans(client, storage, world)
    drain(app)
    calls = [(s.method, s.path.split("/")[-1] if not s.path.endswith("/diff") else "diff") for s in fake.seen[before:]]
    # diff (+ redirect), 1 inline comment, summary, report, 1 annotation batch, status: 7, the request
    # budget of a scan with 3 new findings (6 + 1); the other finding on a changed line is in the summary
    assert len(calls) == 7, calls


def _publish(client, app, storage, fake: FakeBitbucket, token: str, head: str, files: dict[str, str]) -> None:
    fake.repos[REPO].prs[PR].head = head
    upload(client, token, upload_body(head, scan(files), branch=SOURCE_BRANCH, pull_request=PR))
    drain(app)


def _replies(fake: FakeBitbucket, comment: dict) -> list[str]:
    return [c["content"]["raw"] for c in fake.pr_comments(REPO, PR)
            if (c.get("parent") or {}).get("id") == comment["id"]]


def test_a_reverted_fix_reopens_its_thread_and_a_new_fix_resolves_it_again(client, app, storage, admin_headers,
                                                                           fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "workspace")
    _scans(client, storage, world)
    drain(app)
    token = storage.create_upload_token("bitbucket", REPO)
    eval_comment = next(c for c in _inline(fake) if EVAL in c["content"]["raw"])
    repo = storage.find_repository("bitbucket", REPO)

    def resolved_in_ledger() -> bool:
        return next(rc.resolved for rc in storage.review_comments(repo.id, PR)
                    if rc.comment_id == str(eval_comment["id"]))

    _publish(client, app, storage, fake, token, world.fix, FIX_FILES)
    assert eval_comment.get("resolution") is not None and resolved_in_ledger()
    assert [r.split(".")[0] for r in _replies(fake, eval_comment)] == [f"✅ Fixed in {world.fix[:12]}"]

    reverted = fake.add_commit(REPO, HEAD_FILES, salt="revert")
    _publish(client, app, storage, fake, token, reverted, HEAD_FILES)
    assert eval_comment.get("resolution") is None and not resolved_in_ledger()
    replies = _replies(fake, eval_comment)
    assert len(replies) == 2 and replies[1].startswith(f"⚠️ Reintroduced in {reverted[:12]}")
    assert len(_inline(fake)) == 2  # a reply on the thread, never a second comment
    assert len(fake.requests("DELETE", f"/comments/{eval_comment['id']}/resolve")) == 1

    again = fake.add_commit(REPO, FIX_FILES, salt="again")
    _publish(client, app, storage, fake, token, again, FIX_FILES)
    assert eval_comment.get("resolution") is not None and resolved_in_ledger()
    replies = _replies(fake, eval_comment)
    assert len(replies) == 3 and replies[2].startswith(f"✅ Fixed in {again[:12]}")
    assert storage.count_jobs("failed") == 0


def test_a_retried_resolve_replies_once(client, app, storage, admin_headers, fake) -> None:
    world = build_world(fake)
    connect(client, admin_headers, fake, "workspace")
    _scans(client, storage, world)
    drain(app)
    token = storage.create_upload_token("bitbucket", REPO)
    eval_comment = next(c for c in _inline(fake) if EVAL in c["content"]["raw"])
    # The reply is posted, then resolving fails: the retried job must not reply again.
    fake.fail("POST", r"/comments/\d+/resolve$", 502)
    _publish(client, app, storage, fake, token, world.fix, FIX_FILES)
    jobs = storage.jobs(kind="publish_scan")
    assert sorted(j["status"] for j in jobs) == ["done", "queued"]
    assert len(_replies(fake, eval_comment)) == 1 and eval_comment.get("resolution") is None
    _run_due_at(app, max(j["run_at"] for j in jobs) + 1)
    assert [j["status"] for j in storage.jobs(kind="publish_scan")] == ["done", "done"]
    assert len(_replies(fake, eval_comment)) == 1 and eval_comment.get("resolution") is not None

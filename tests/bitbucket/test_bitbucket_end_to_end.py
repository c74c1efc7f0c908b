"""The whole story on Bitbucket Cloud, with a workspace token and with a repository token:
connection → base scan, PR webhook and PR scan → inline comments, Code Insights report,
build status → redelivery and re-upload change nothing → a fix resolves its thread
and a re-indent adds nothing.

Every request stays within Bitbucket's API description: the webhooks' 12-character hashes
are known from the scans CI uploaded, so the last-resort commit lookup is never sent, and
only a workspace connection's check uses its one allow-listed route."""

from __future__ import annotations

import json

import pytest

from tests.bitbucket.bitbucket_scenario import (
    BASE_FILES,
    EVAL,
    EVAL_LINE,
    FIX_FILES,
    HEAD_FILES,
    OPEN,
    PICKLE,
    PICKLE_ADDED_LINE,
    PR,
    REPO,
    RULES,
    SOURCE_BRANCH,
    World,
    build_world,
    connect,
    delivery,
    scan,
    upload,
    upload_body,
)
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain


def _inline(fake: FakeBitbucket) -> list[dict]:
    return [c for c in fake.pr_comments(REPO, PR) if c.get("inline") and not c.get("parent")]


def _summary(fake: FakeBitbucket) -> list[dict]:
    return [c for c in fake.pr_comments(REPO, PR) if "forge-app:summary" in c["content"]["raw"]]


@pytest.mark.parametrize("kind", ["workspace", "repository"])
def test_pull_request_story(kind, client, app, storage, admin_headers, fake: FakeBitbucket) -> None:
    world: World = build_world(fake)
    connect(client, admin_headers, fake, kind)
    r = client.put("/api/v1/policies", headers=admin_headers, json={"default": "comment", "rules": {EVAL: "block"}})
    assert r.status_code == 200, r.text
    upload_token = storage.create_upload_token("bitbucket", REPO)
    allowed = ["GET /repositories/acme"] if kind == "workspace" else []  # the connection check's
    assert fake.outside_description == allowed

    # CI: a base scan of main (the old rule set); the PR is opened, and CI uploads its scan.
    upload(client, upload_token, upload_body(world.base, scan(BASE_FILES, RULES), branch="main", pull_request=None))
    body, headers = delivery("pullrequest_created", head=world.head, base=world.base)
    r = client.post("/webhooks/bitbucket", content=body, headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    pr_scan = upload_body(world.head, scan(HEAD_FILES), branch=SOURCE_BRANCH, pull_request=PR)
    first = upload(client, upload_token, pr_scan)
    assert first["counts"] == {"new": 3, "fixed": 0, "unchanged": 2} and first["blocking"] is True
    drain(app)
    # The webhook's 12-character head hash was resolved from the scan: no lookup of any kind.
    repo = storage.find_repository("bitbucket", REPO)
    assert repo is not None
    pr_meta = storage.forge_object(repo.id, f"pr:{PR}", "pull_request")
    assert pr_meta["head_sha"] == world.head and pr_meta["source_branch"] == SOURCE_BRANCH
    assert fake.outside_description == allowed
    assert not [s for s in fake.seen if s.method == "GET" and s.path == f"/repositories/{REPO}/pullrequests/{PR}"]

    # New findings on added lines are commented, on those lines, the blocking one first, as many as
    # the request budget allows (6 + ceil(3/50) = 7: the diff and its redirect, the summary, the
    # report, its annotations and the build status leave one); the other is in the summary and,
    # like every new finding, annotated inline through Code Insights.
    inline = _inline(fake)
    assert sorted((c["inline"]["path"], c["inline"]["to"]) for c in inline) == [("app/views.py", EVAL_LINE)]
    eval_comment = next(c for c in inline if c["inline"]["to"] == EVAL_LINE)
    raw = eval_comment["content"]["raw"]
    assert "```diff" in raw and "-    value = eval(expr)\n+    value = ast.literal_eval(expr)" in raw
    assert "\n[forge-app:finding=" in eval_comment["content"]["raw"]  # hidden: Bitbucket shows HTML comments
    assert "<!--" not in eval_comment["content"]["raw"]
    # The new finding outside the diff is in the one summary comment.
    summary = _summary(fake)
    assert len(summary) == 1
    assert OPEN in summary[0]["content"]["raw"] and "app/util.py:2" in summary[0]["content"]["raw"]
    assert PICKLE in summary[0]["content"]["raw"] and "request budget" in summary[0]["content"]["raw"]
    # Code Insights: FAILED (a block rule), one annotation per commented/blocking new finding.
    report = fake.reports[(REPO, world.head, "forge-app")]
    assert report["result"] == "FAILED" and report["report_type"] == "SECURITY"
    assert {d["title"]: d["value"] for d in report["data"]}["Blocking"] == 1
    annotations = fake.annotations[(REPO, world.head, "forge-app")]
    assert len(annotations) == 3
    assert next(iter(annotations.values()))["severity"] == "CRITICAL"  # the blocking eval() first
    # Build status: failed (no INPROGRESS first: within the budget that request buys a comment), on
    # the head commit, for the source branch, linking the scan.
    # The diff came through Bitbucket's redirect to /diff/{spec}, fetched with the token.
    assert fake.requests("GET", f"/pullrequests/{PR}/diff")[0].status == 302
    followed = fake.requests("GET", f"/{REPO}/diff/")
    assert followed and all("authorization" in s.headers for s in followed)
    assert fake.followed_redirects == [f"GET {s.path}" for s in followed]
    states = [s["state"] for name, sha, s in fake.status_history if sha == world.head]
    assert states == ["FAILED"]
    status = fake.statuses[(REPO, world.head)]["forge-app"]
    assert status["refname"] == SOURCE_BRANCH and status["url"] == first["url"]

    # A redelivered webhook and a re-uploaded scan change nothing.
    comments_before = json.dumps(fake.pr_comments(REPO, PR), sort_keys=True)
    r = client.post("/webhooks/bitbucket", content=body, headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "duplicate"
    again = upload(client, upload_token, pr_scan)
    writes_before = len([s for s in fake.seen if s.method != "GET"])
    drain(app)
    posted = [s for s in fake.seen[:] if s.method != "GET"][writes_before:]
    # Nothing is sent: no comment, no summary edit, no status, report or annotation.
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in posted] == []
    assert len(fake.pr_comments(REPO, PR)) == len(json.loads(comments_before))
    assert [c["content"]["raw"] for c in _inline(fake)] == [c["content"]["raw"] for c in inline]
    assert fake.statuses[(REPO, world.head)]["forge-app"]["state"] == "FAILED"
    assert again["counts"] == first["counts"]

    # The fix: eval() removed, the rest re-indented. Its thread gets a reply, then is resolved.
    body, headers = delivery("pullrequest_updated.new-commits", head=world.fix, base=world.base)
    assert client.post("/webhooks/bitbucket", content=body, headers=headers).status_code == 202
    fake.repos[REPO].prs[PR].head = world.fix
    fixed = upload(client, upload_token, upload_body(world.fix, scan(FIX_FILES), branch=SOURCE_BRANCH, pull_request=PR))
    assert fixed["blocking"] is False
    drain(app)
    assert storage.forge_object(repo.id, f"pr:{PR}", "pull_request")["head_sha"] == world.fix
    replies = [c for c in fake.pr_comments(REPO, PR) if c.get("parent")]
    assert len(replies) == 1 and replies[0]["parent"]["id"] == eval_comment["id"]
    assert world.fix[:12] in replies[0]["content"]["raw"]
    assert eval_comment.get("resolution") is not None
    pickle_comment = next(c for c in _inline(fake) if c["inline"]["to"] == PICKLE_ADDED_LINE)
    assert pickle_comment.get("resolution") is None
    assert len(_inline(fake)) == 2  # the re-indented findings brought nothing new
    assert len(_summary(fake)) == 1
    assert fake.reports[(REPO, world.fix, "forge-app")]["result"] == "PASSED"
    assert fake.statuses[(REPO, world.fix)]["forge-app"]["state"] == "SUCCESSFUL"
    assert PICKLE in " ".join(a["summary"] for a in fake.annotations[(REPO, world.fix, "forge-app")].values())
    assert storage.count_jobs("failed") == 0
    assert fake.outside_description == allowed  # still nothing but the connection check

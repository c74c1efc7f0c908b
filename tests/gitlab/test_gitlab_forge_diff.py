"""An MR scan uploaded without the uploader's diff: the server reads the MR's latest version and its diffs
from the (fake) GitLab, within its API contract, and the diff decides identity first when the version's
base is the base scan's commit and the target has not moved on since (docs/fingerprints.md)."""

from __future__ import annotations

from typing import Any

from storage import Storage
from tests.gitlab.fake_gitlab import FakeGitLab
from tests.web.forge_diff_story import BASE, CONTEXT_ALONE, COPIES, HEAD, PATH, RIGHT, findings, git_patch, places

PROJECT, PROJECT_ID, IID = "acme/requests", 654, 5
TOKEN = "glpat-forge-diff-0123456789"


def _connect(client: Any, admin_headers: dict[str, str], storage: Storage, gitlab: FakeGitLab) -> tuple[str, Any]:
    gitlab.add_token(TOKEN, ["api"])
    project = gitlab.add_project(PROJECT, PROJECT_ID)
    r = client.post("/api/v1/connections", headers=admin_headers, json={
        "forge": "gitlab", "base_url": gitlab.url, "scope": "project", "target": PROJECT, "token": TOKEN,
        "webhook_secret": "forge-diff-webhook-secret"})
    assert r.status_code == 201, r.text
    return storage.create_upload_token("gitlab", PROJECT), project


def _upload(client: Any, token: str, files: dict[str, str], commit: str, pr: int | None = None) -> dict[str, Any]:
    body = {"commit": commit, "branch": "main" if pr is None else "feature", "pull_request": pr,
            "tools": ["semgrep"], "findings": findings(files), **({"base_branch": "main"} if pr else {})}
    r = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


def _open(gitlab: FakeGitLab, project: Any, base_sha: str, head_sha: str) -> dict[str, Any]:
    mr = gitlab.open_mr(project, IID, base_sha, head_sha)
    version = mr.latest
    for item in mr.diffs[version["id"]]:  # GitLab's diff is git's: the copies are the added lines
        item["diff"] = git_patch(BASE[PATH], HEAD[PATH])
    return version


def test_the_merge_request_diff_keeps_the_untouched_original(client, admin_headers, storage, gitlab):
    token, project = _connect(client, admin_headers, storage, gitlab)
    base_sha, head_sha = gitlab.commit(project, BASE, "base"), gitlab.commit(project, HEAD, "two new tests")
    _open(gitlab, project, base_sha, head_sha)
    _upload(client, token, BASE, base_sha)
    mark = len(gitlab.requests)

    scan = _upload(client, token, HEAD, head_sha, pr=IID)

    assert scan["counts"] == {"new": 2, "fixed": 0, "unchanged": 1}
    assert sorted(f["line"] for f in scan["new_findings"]) == COPIES
    assert places(storage.scan_findings(scan["id"])) == RIGHT
    mr = f"/projects/{PROJECT_ID}/merge_requests/{IID}"
    read = [(q.method, q.path.replace("acme%2Frequests", str(PROJECT_ID))) for q in gitlab.requests[mark:]]
    assert ("GET", mr + "/versions") in read and ("GET", mr + "/diffs") in read, read


def test_a_target_that_moved_on_leaves_identity_to_the_fingerprints(client, admin_headers, storage, gitlab):
    # The version's start (the target's tip) is past its base (the merge base): a merged-results pipeline
    # scanned files the MR's diff does not describe.
    token, project = _connect(client, admin_headers, storage, gitlab)
    base_sha, head_sha = gitlab.commit(project, BASE, "base"), gitlab.commit(project, HEAD, "two new tests")
    version = _open(gitlab, project, base_sha, head_sha)
    version["start_commit_sha"] = gitlab.commit(project, {**BASE, "other.py": "x = 1\n"}, "main moved on")
    _upload(client, token, BASE, base_sha)
    scan = _upload(client, token, HEAD, head_sha, pr=IID)
    assert places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE


def test_an_upload_naming_another_base_commit_is_not_mapped(client, admin_headers, storage, gitlab):
    token, project = _connect(client, admin_headers, storage, gitlab)
    base_sha, head_sha = gitlab.commit(project, BASE, "base"), gitlab.commit(project, HEAD, "two new tests")
    _open(gitlab, project, base_sha, head_sha)
    _upload(client, token, BASE, base_sha)
    body = {"commit": head_sha, "branch": "feature", "base_branch": "main", "pull_request": IID,
            "base_commit": "f" * 40, "tools": ["semgrep"], "findings": findings(HEAD)}
    r = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    assert places(storage.scan_findings(r.json()["id"])) == CONTEXT_ALONE

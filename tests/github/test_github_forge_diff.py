"""A PR scan uploaded without the uploader's diff: the server reads the PR's diff from the (fake) GitHub,
`GET /pulls/{n}`, `/files` and `/commits`, each validated against GitHub's OpenAPI description, and the
diff decides identity first when its base is the base scan's commit (docs/fingerprints.md)."""

from __future__ import annotations

from tests.cli.test_diff_git import PATTERN, RULE
from tests.conftest import drain
from tests.github.gh_helpers import PR, REPO, sha, upload
from tests.github.test_github_source_fetch import install
from tests.support.gitrepo import scan
from tests.web.forge_diff_story import BASE, CONTEXT_ALONE, COPIES, HEAD, RIGHT, findings, github_files, places
from tests.web.source_story import get_scan, post_raw

BASE_SHA = sha("forge-diff:base")
HEAD_SHA = sha("forge-diff:head")
PULL = rf"/repos/{REPO}/pulls/{PR}"


def _base_scan(client, token) -> dict:
    return upload(client, token, commit=BASE_SHA, findings=findings(BASE), branch="main")


def _pr_scan(client, token) -> dict:
    return upload(client, token, commit=HEAD_SHA, findings=findings(HEAD), pr=PR, branch="feature",
                  base_branch="main")


def test_the_pull_request_diff_keeps_the_untouched_original(client, storage, fake_github):
    token = install(fake_github, storage)
    base = _base_scan(client, token)
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD), base_sha=BASE_SHA)
    mark = fake_github.mark()

    scan = _pr_scan(client, token)

    assert scan["status"] == "done" and scan["counts"] == {"new": 2, "fixed": 0, "unchanged": 1}
    assert scan["baseline_scan_id"] == base["id"]
    assert sorted(f["line"] for f in scan["new_findings"]) == COPIES
    assert places(storage.scan_findings(scan["id"])) == RIGHT
    assert not any("fingerprints only" in n for n in scan["notes"])
    read = [(r["method"], r["path"]) for r in fake_github.since(mark)]
    assert ("GET", PULL) in read and ("GET", PULL + "/files") in read and ("GET", PULL + "/commits") in read


def test_a_base_that_moved_on_leaves_identity_to_the_fingerprints(client, storage, fake_github):
    # GitHub's base tip is not in the PR's history (main moved on since the branch was made): the PR's
    # diff starts at an older merge base than the base scan, so it cannot map the scan's lines.
    token = install(fake_github, storage)
    _base_scan(client, token)
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD))
    scan = _pr_scan(client, token)
    assert scan["counts"] == {"new": 2, "fixed": 0, "unchanged": 1}
    assert places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE
    assert any("fingerprints only: the forge does not show that the base branch's tip is in the head's history"
               in n for n in scan["notes"]), scan["notes"]


def test_a_scan_of_another_commit_than_the_pull_request_head_is_not_mapped(client, storage, fake_github):
    token = install(fake_github, storage)
    _base_scan(client, token)
    fake_github.set_pull(REPO, PR, sha("forge-diff:newer-head"), github_files(BASE, HEAD), base_sha=BASE_SHA)
    scan = _pr_scan(client, token)
    assert places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE


def test_a_base_scan_of_another_commit_is_not_mapped(client, storage, fake_github):
    # The diff starts at BASE_SHA, but the only base scan is of another commit: the mapping says
    # nothing about its lines.
    token = install(fake_github, storage)
    upload(client, token, commit=sha("forge-diff:other-base"), findings=findings(BASE), branch="main")
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD), base_sha=BASE_SHA)
    scan = _pr_scan(client, token)
    assert places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE


def test_github_failing_costs_only_the_diff(client, storage, fake_github):
    token = install(fake_github, storage)
    _base_scan(client, token)
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD), base_sha=BASE_SHA)
    fake_github.inject("GET", PULL + "/files", 500, times=10)
    scan = _pr_scan(client, token)
    assert scan["status"] == "done" and places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE


def test_a_scan_without_look_alike_findings_reads_no_diff(client, storage, fake_github):
    token = install(fake_github, storage)
    one = {"app.py": "def f():\n    assert p.headers[\"Content-Length\"] == length\n"}
    upload(client, token, commit=BASE_SHA, findings=findings(one), branch="main")
    fake_github.set_pull(REPO, PR, HEAD_SHA, [], base_sha=BASE_SHA)
    mark = fake_github.mark()
    scan = upload(client, token, commit=HEAD_SHA, findings=findings(one), pr=PR, branch="feature", base_branch="main")
    assert scan["counts"] == {"new": 0, "fixed": 0, "unchanged": 1}
    assert fake_github.since(mark) == []  # nothing for the diff to decide: no request to GitHub


def test_a_diff_answer_of_an_unexpected_shape_costs_only_the_diff(client, storage, fake_github):
    token = install(fake_github, storage)
    _base_scan(client, token)
    fake_github.set_pull(REPO, PR, HEAD_SHA, [{"filename": None, "status": 7}, "not an object"], base_sha=BASE_SHA)
    scan = _pr_scan(client, token)
    assert scan["status"] == "done" and places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE


def _without_code(files: dict[str, str]) -> dict:
    """Raw `semgrep scan --json` without login: no code, no fingerprint (the server reads the files)."""
    report = scan(files, PATTERN, RULE)
    for r in report["results"]:
        r["extra"]["lines"] = "requires login"
    return report


def test_a_raw_report_without_code_is_decided_by_the_diff_once_its_files_are_read(client, app, storage,
                                                                                   fake_github):
    # The server's whole path: findings without code are look-alikes of each other, so the upload reads
    # the PR's diff; the scan waits (`processing`) for its files, then is triaged with the diff.
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE)
    fake_github.add_commit(REPO, HEAD_SHA, HEAD)
    base = post_raw(client, token, _without_code(BASE), commit=BASE_SHA)
    drain(app)
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD), base_sha=BASE_SHA)

    pr = post_raw(client, token, _without_code(HEAD), commit=HEAD_SHA, branch="feature", pr=PR)
    assert pr["status"] == "processing"
    drain(app)

    done = get_scan(client, token, pr["id"])
    assert done["status"] == "done" and done["baseline_scan_id"] == base["id"]
    assert done["counts"] == {"new": 2, "fixed": 0, "unchanged": 1}
    assert places(storage.scan_findings(pr["id"])) == RIGHT

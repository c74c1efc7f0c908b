"""Raw Semgrep uploads without code snippets for a repository where the app is installed:
the scan answers `processing`, a job reads each file once through the contents API at the
scanned commit (validated by the fake against GitHub's OpenAPI description), fingerprints
get their context, then the scan is triaged, recorded and published."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forge_app.core.fingerprint import fingerprint_fallback
from forge_app.core.models import Finding
from forge_app.web.app import create_app
from tests.conftest import drain
from tests.github.fake_github import FakeGitHub
from tests.github.gh_helpers import INSTALLATION, PR, REPO, github_files, sha
from tests.support.live_server import serve
from tests.web.source_story import (
    BASE_FILES,
    COPY_LINE,
    EVAL,
    HEAD_FILES,
    ORIGINAL_LINE,
    get_scan,
    has_context,
    post_raw,
    report,
    semgrep_results,
)

BASE_SHA = sha("source-fetch:base")
HEAD_SHA = sha("source-fetch:head")
CONTENTS = r"/repos/octo/demo/contents/"


def install(fake: FakeGitHub, storage) -> str:
    """The app installed on the repository (as its webhooks leave it); returns an upload token."""
    fake.add_installation(INSTALLATION, "octo", [REPO])
    storage.upsert_github_installation(INSTALLATION)
    storage.link_github_repositories(INSTALLATION, [REPO])
    return storage.create_upload_token("github", REPO)


def contents_paths(fake: FakeGitHub, since: int = 0) -> list[str]:
    return sorted(r["path"].split("/contents/", 1)[1] for r in fake.since(since) if "/contents/" in r["path"])


def test_raw_report_is_fingerprinted_from_the_files_at_the_commit(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    results = semgrep_results(BASE_FILES)
    assert len(results) == 3

    answer = post_raw(client, token, report(results), commit=BASE_SHA)
    assert answer["status"] == "processing"
    assert answer["counts"] == {"new": 0, "fixed": 0, "unchanged": 0} and answer["new_findings"] == []
    assert get_scan(client, token, answer["id"])["status"] == "processing"
    assert storage.jobs(kind="complete_scan")[0]["idempotency_key"] == f"complete_scan:{answer['id']}"
    assert storage.jobs(kind="notify_scan") == []  # follow-ups wait for the completed scan

    mark = fake_github.mark()
    drain(app)
    # Each file once, at the scanned commit, as the installation.
    assert contents_paths(fake_github, mark) == ["app/util.py", "app/views.py"]
    assert all(f"ref={BASE_SHA}" in r["query"] for r in fake_github.since(mark) if "/contents/" in r["path"])
    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and done["counts"] == {"new": 3, "fixed": 0, "unchanged": 0}
    assert done["completed_at"] and done["error_detail"] is None
    assert len(done["findings"]) == 3 and all(has_context(f) for f in done["findings"])
    # The two identical MD5 findings of util.py are told apart by their neighbours.
    md5 = [f["fingerprint"]["value"] for f in done["findings"] if f["path"] == "app/util.py"]
    assert len(set(md5)) == 2
    assert [j["status"] for j in storage.jobs(kind="notify_scan")] == ["done"]


def test_pull_request_with_a_copied_line_reports_exactly_the_copy(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    fake_github.add_commit(REPO, HEAD_SHA, HEAD_FILES)
    base = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    drain(app)
    fake_github.set_pull(REPO, PR, HEAD_SHA, github_files(BASE_FILES, HEAD_FILES))

    pr = post_raw(client, token, report(semgrep_results(HEAD_FILES)), commit=HEAD_SHA, branch="feature", pr=PR)
    assert pr["status"] == "processing"
    assert storage.jobs(kind="publish_scan") == []
    mark = fake_github.mark()
    drain(app)

    assert contents_paths(fake_github, mark) == ["app/util.py", "app/views.py"]
    done = get_scan(client, token, pr["id"], findings="all")
    assert done["status"] == "done" and done["baseline_scan_id"] == base["id"]
    assert done["counts"] == {"new": 1, "fixed": 0, "unchanged": 3}
    new = [f for f in done["findings"] if f["status"] == "new"]
    assert [(f["rule_id"], f["path"], f["start_line"]) for f in new] == [(EVAL, "app/views.py", COPY_LINE)]
    original = next(f for f in done["findings"] if f["start_line"] == ORIGINAL_LINE)
    assert original["status"] == "unchanged" and original["base_line"] == 6
    assert done["new_findings"][0]["line"] == COPY_LINE
    # Published once complete: the one review comment is on the copy.
    assert [j["status"] for j in storage.jobs(kind="publish_scan")] == ["done"]
    comments = fake_github.comments_of(REPO, PR)
    assert [(c["path"], c["line"]) for c in comments] == [("app/views.py", COPY_LINE)]


def test_a_file_the_forge_does_not_have_keeps_the_fallback(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    results = semgrep_results(BASE_FILES, extra_paths={"app/gone.py": [3]})
    answer = post_raw(client, token, report(results), commit=BASE_SHA)
    assert answer["status"] == "processing"
    drain(app)

    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and done["counts"]["new"] == 4
    gone = next(f for f in done["findings"] if f["path"] == "app/gone.py")
    assert gone["fingerprint"] == fingerprint_fallback(Finding.from_dict(gone)).to_dict()
    assert all(has_context(f) for f in done["findings"] if f["path"] != "app/gone.py")
    statuses = [r["status"] for r in fake_github.requests if r["path"].endswith("/contents/app/gone.py")]
    assert statuses == [404]


def test_without_an_installation_the_upload_is_recorded_at_once(client, app, storage, fake_github):
    token = storage.create_upload_token("github", REPO)  # the app is configured but not installed there
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    assert answer["status"] == "done" and answer["counts"]["new"] == 3
    assert storage.jobs(kind="complete_scan") == []
    drain(app)
    findings = get_scan(client, token, answer["id"], findings="all")["findings"]
    assert not any(has_context(f) for f in findings)
    assert not contents_paths(fake_github)


def test_a_suspended_installation_has_no_fetcher(client, storage, fake_github):
    token = install(fake_github, storage)
    storage.upsert_github_installation(INSTALLATION, suspended=True)
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    assert answer["status"] == "done"


def test_snippets_or_checkout_fingerprints_need_no_fetch(client, app, storage, fake_github):
    token = install(fake_github, storage)
    doc = report(semgrep_results(BASE_FILES))
    for r in doc["results"]:
        path, line = r["path"], r["start"]["line"]
        r["extra"]["lines"] = BASE_FILES[path].split("\n")[line - 1]
    answer = post_raw(client, token, doc, commit=BASE_SHA)
    assert answer["status"] == "done" and answer["counts"]["new"] == 3
    drain(app)
    assert not contents_paths(fake_github)


def test_a_file_over_one_megabyte_is_read_in_the_raw_media_type(client, app, storage, fake_github):
    token = install(fake_github, storage)
    big = BASE_FILES["app/views.py"] + "".join(f"PAD_{i} = {i}\n" for i in range(80_000))
    assert 1024 * 1024 < len(big) < 5 * 1024 * 1024
    fake_github.add_commit(REPO, BASE_SHA, {**BASE_FILES, "app/views.py": big})
    answer = post_raw(client, token, report(semgrep_results({"app/views.py": BASE_FILES["app/views.py"]})),
                      commit=BASE_SHA)
    mark = fake_github.mark()
    drain(app)
    assert contents_paths(fake_github, mark) == ["app/views.py", "app/views.py"]  # object, then raw
    finding = get_scan(client, token, answer["id"], findings="all")["findings"][0]
    assert has_context(finding)


def test_a_rate_limit_waits_and_the_scan_stays_processing(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    fake_github.inject("GET", CONTENTS, 403, headers={"x-ratelimit-remaining": "0",
                                                     "x-ratelimit-reset": str(int(time.time()) + 30)},
                       message="API rate limit exceeded")
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    drain(app)
    job = storage.jobs(kind="complete_scan")[0]
    assert job["status"] == "queued" and "rate limit" in job["last_error"]
    assert get_scan(client, token, answer["id"])["status"] == "processing"

    asyncio.run(app.state.worker.run_once(now=time.time() + 120))
    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and all(has_context(f) for f in done["findings"])


def test_when_the_job_gives_up_the_scan_fails_with_the_reason(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.inject("GET", CONTENTS, 502, message="Server Error", times=100)
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    later = time.time()
    for _ in range(8):
        later += 7200
        asyncio.run(app.state.worker.run_once(now=later))
    failed = get_scan(client, token, answer["id"])
    assert failed["status"] == "failed"
    assert "502" in failed["error_detail"] and "8 attempts" in failed["error_detail"]
    assert storage.jobs(kind="complete_scan")[0]["status"] == "failed"
    assert storage.jobs(kind="notify_scan") == [] and storage.pending_upload(answer["id"]) is None


def test_a_refusal_completes_the_scan_with_the_fingerprints_it_has(client, app, storage, fake_github):
    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    fake_github.inject("GET", CONTENTS, 403, message="Resource not accessible by integration")
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    drain(app)
    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and done["counts"]["new"] == 3
    assert any("Contents: read" in e for e in done["errors"])
    assert not any(has_context(f) for f in done["findings"])
    assert fake_github.violations == []


# `forge-app upload` against a live server ---------------------------------------------------
def _run_upload(root: Path, server: str, token: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "BITBUCKET_"))}
    return subprocess.run(
        [sys.executable, "-m", "forge_app.cli.main", "upload", "semgrep.json", "--server", server, "--token", token,
         "--repo", REPO, "--commit", BASE_SHA, "--branch", "main", "--root", str(root / "empty"), *extra],
        env=env, cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture
def reports_only(tmp_path: Path) -> Path:
    """A CI job that has the report but not the checkout (an artifact from the scan job)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "semgrep.json").write_text(json.dumps(report(semgrep_results(BASE_FILES))))
    return tmp_path


def test_upload_cli_waits_for_the_processing_scan(settings, storage, fake_github, reports_only, admin_headers):
    import httpx

    token = install(fake_github, storage)
    fake_github.add_commit(REPO, BASE_SHA, BASE_FILES)
    with serve(create_app(settings, storage)) as server:  # with its job worker
        httpx.put(f"{server}/api/v1/policies", json={"default": "comment", "rules": {EVAL: "block"}},
                  headers=admin_headers).raise_for_status()
        done = _run_upload(reports_only, server, token)
    assert done.returncode == 1, done.stderr  # a blocking finding is new, known only once processed
    lines = done.stdout.strip().splitlines()
    assert "processing" in lines[0]
    assert any("3 new" in line for line in lines) and "result: blocking findings are new" in lines[-2]
    scan = storage.scan(int(lines[-1].rsplit("/", 1)[1]))
    assert lines[-1] == f"{settings.public_url}/api/v1/scans/{scan.id}"  # the server's public URL wins
    assert scan.status == "done" and scan.count_new == 3
    assert all(has_context(sf.finding.to_dict()) for sf in storage.scan_findings(scan.id))


def test_upload_cli_gives_up_waiting_with_exit_2(settings, storage, fake_github, reports_only):
    token = install(fake_github, storage)
    with serve(create_app(settings, storage, run_worker=False)) as server:  # nothing completes it
        started = time.monotonic()
        done = _run_upload(reports_only, server, token, "--timeout", "2")
    assert done.returncode == 2
    assert time.monotonic() - started < 30
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{settings.public_url}/api/v1/scans/")
    error = done.stderr.strip()
    assert error.startswith("forge-app upload: error:") and "still processing" in error and url in error

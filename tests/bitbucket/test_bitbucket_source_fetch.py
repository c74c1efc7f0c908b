"""Raw Semgrep uploads without code snippets for a repository a Bitbucket connection covers:
the scan answers `processing`, a job reads each file once with `GET .../src/{commit}/{path}`
(validated against Bitbucket's API description by the fake), then triages and publishes."""

from __future__ import annotations

from forge_app.core.fingerprint import fingerprint_fallback
from forge_app.core.models import Finding
from tests.bitbucket.bitbucket_scenario import connect
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain
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

REPO = "acme/widgets"
PR = 7


def _world(client, admin_headers, storage, fake: FakeBitbucket, kind: str = "repository") -> tuple[str, str, str]:
    fake.add_repo(REPO)
    base = fake.add_commit(REPO, BASE_FILES)
    head = fake.add_commit(REPO, HEAD_FILES)
    fake.open_pr(REPO, PR, source_branch="feature", head=head, base=base)
    connect(client, admin_headers, fake, kind)
    return storage.create_upload_token("bitbucket", REPO), base, head


def _src_paths(fake: FakeBitbucket, commit: str) -> list[str]:
    prefix = f"/repositories/{REPO}/src/{commit}/"
    return sorted(s.path[len(prefix):] for s in fake.requests("GET", prefix))


def test_raw_pull_request_scan_reads_the_files_and_reports_exactly_the_copy(client, app, storage, admin_headers,
                                                                           fake: FakeBitbucket):
    token, base_sha, head_sha = _world(client, admin_headers, storage, fake, "workspace")
    base = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=base_sha)
    assert base["status"] == "processing" and base["counts"] == {"new": 0, "fixed": 0, "unchanged": 0}
    drain(app)
    assert _src_paths(fake, base_sha) == ["app/util.py", "app/views.py"]  # each file once
    assert all(s.headers.get("authorization") for s in fake.requests("GET", "/src/"))
    done = get_scan(client, token, base["id"], findings="all")
    assert done["status"] == "done" and all(has_context(f) for f in done["findings"])

    pr = post_raw(client, token, report(semgrep_results(HEAD_FILES)), commit=head_sha, branch="feature", pr=PR)
    assert pr["status"] == "processing"
    drain(app)
    assert _src_paths(fake, head_sha) == ["app/util.py", "app/views.py"]
    done = get_scan(client, token, pr["id"], findings="all")
    assert done["status"] == "done" and done["counts"] == {"new": 1, "fixed": 0, "unchanged": 3}
    new = [f for f in done["findings"] if f["status"] == "new"]
    assert [(f["rule_id"], f["start_line"]) for f in new] == [(EVAL, COPY_LINE)]
    assert next(f for f in done["findings"] if f["start_line"] == ORIGINAL_LINE)["status"] == "unchanged"
    # Published only once complete: the one inline comment is on the copy.
    inline = [c for c in fake.pr_comments(REPO, PR) if c.get("inline") and not c.get("parent")]
    assert [(c["inline"]["path"], c["inline"]["to"]) for c in inline] == [("app/views.py", COPY_LINE)]


def test_a_missing_file_keeps_the_fallback(client, app, storage, admin_headers, fake: FakeBitbucket):
    token, base_sha, _ = _world(client, admin_headers, storage, fake)
    results = semgrep_results(BASE_FILES, extra_paths={"app/gone.py": [2]})
    answer = post_raw(client, token, report(results), commit=base_sha)
    drain(app)
    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and done["counts"]["new"] == 4
    gone = next(f for f in done["findings"] if f["path"] == "app/gone.py")
    assert gone["fingerprint"] == fingerprint_fallback(Finding.from_dict(gone)).to_dict()
    assert [s.status for s in fake.requests("GET", "/src/") if s.path.endswith("/app/gone.py")] == [404]


def test_a_rate_limited_read_is_retried(client, app, storage, admin_headers, fake: FakeBitbucket):
    import asyncio
    import time

    token, base_sha, _ = _world(client, admin_headers, storage, fake)
    fake.fail("GET", r"/src/", 429, headers={"Retry-After": "30"})
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=base_sha)
    drain(app)
    assert get_scan(client, token, answer["id"])["status"] == "processing"
    assert "rate limit" in storage.jobs(kind="complete_scan")[0]["last_error"]
    asyncio.run(app.state.worker.run_once(now=time.time() + 60))
    assert get_scan(client, token, answer["id"])["status"] == "done"


def test_without_a_connection_the_upload_is_recorded_at_once(client, storage):
    token = storage.create_upload_token("bitbucket", REPO)
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit="a" * 40)
    assert answer["status"] == "done" and answer["counts"]["new"] == 3
    assert storage.jobs(kind="complete_scan") == []

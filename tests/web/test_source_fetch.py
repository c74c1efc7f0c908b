"""The forge-independent part of reading sources for uploads that lack them: which findings
need their file, the source-fetcher registry, the processing scan in storage (one
transaction to complete it), and the upload flow with a stub fetcher."""

from __future__ import annotations

import dataclasses

import pytest

from forge_app.core.fingerprint import fingerprint_fallback, fingerprint_findings, needs_source
from forge_app.core.models import Finding
from forge_app.forges import registry
from forge_app.services.ingest import complete_upload
from storage import JobSpec, NewScan, PendingScan, ScanEntry
from tests.conftest import drain
from tests.web.source_story import (
    BASE_FILES,
    COPY_LINE,
    HEAD_FILES,
    get_scan,
    has_context,
    post_raw,
    report,
    semgrep_results,
)

FORGE = "stubforge"
REPO = "team/app"
BASE_SHA, HEAD_SHA = "1" * 40, "2" * 40


class StubFetcher:
    """Files per commit, with a log of what was asked."""

    def __init__(self, trees: dict[str, dict[str, str]]) -> None:
        self.trees = trees
        self.asked: list[tuple[str, str]] = []
        self.closed = 0

    async def fetch(self, path: str, commit: str) -> str | None:
        self.asked.append((path, commit))
        return self.trees.get(commit, {}).get(path)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def stub(monkeypatch) -> StubFetcher:
    fetcher = StubFetcher({BASE_SHA: BASE_FILES, HEAD_SHA: HEAD_FILES})
    stub_forge = dataclasses.replace(registry.FORGES["github"], name=FORGE, publisher=lambda context, scan: None,
                                     job_handlers={}, webhook=None, detect_ci=None, startup_hints=None,
                                     source_fetcher=lambda context, repo: fetcher if repo.full_name == REPO else None)
    monkeypatch.setitem(registry.FORGES, FORGE, stub_forge)
    return fetcher


def _finding(**kw) -> Finding:
    base = dict(rule_id="r", path="app/views.py", start_line=6, end_line=6, message="m", snippet=None)
    return Finding(**{**base, **kw})


# which findings need their file ------------------------------------------------------------
def test_needs_source_only_without_checkout_and_snippet():
    from_source = fingerprint_findings([_finding()], BASE_FILES.get)[0]
    assert not needs_source(from_source)
    with_snippet = fingerprint_findings([_finding(snippet="    return eval(data)")], lambda p: None)[0]
    assert not needs_source(with_snippet)
    login = _finding(snippet="requires login")
    assert needs_source(fingerprint_findings([login], lambda p: None)[0])  # the fallback
    assert needs_source(login)  # no fingerprint at all
    assert needs_source(login.with_fingerprint(fingerprint_fallback(login)))  # what `forge-app upload` sends then
    one_line_file = fingerprint_findings([_finding(start_line=1, end_line=1)], lambda p: "eval(x)")[0]
    assert not one_line_file.fingerprint.before and not needs_source(one_line_file)


def test_gitlab_has_no_source_fetcher(app, storage):
    repo = storage.ensure_repository("gitlab", "group/project")
    assert registry.fetcher_for(app.state.job_context, repo) is None


# storage: reserve, complete, fail ------------------------------------------------------------
def _pending(repo_id: int, findings: list[Finding]) -> PendingScan:
    return PendingScan(repository_id=repo_id, commit=BASE_SHA, branch="main", base_branch=None, pull_request=None,
                       is_baseline=True, tools=["semgrep"], errors=[], meta={}, findings=findings,
                       jobs=[JobSpec("complete_scan", {}, key="complete_scan:{scan_id}")])


def _triaged(repo_id: int, findings: list[Finding], jobs: list[JobSpec]) -> NewScan:
    return NewScan(repository_id=repo_id, commit=BASE_SHA, branch="main", base_branch=None, pull_request=None,
                   is_baseline=True, base_scan_id=None, tools=[], errors=[], meta={}, blocking=False,
                   entries=[ScanEntry(f, "new", "comment") for f in findings], jobs=jobs)


def test_a_reserved_scan_is_completed_once_in_one_transaction(storage):
    repo = storage.ensure_repository(FORGE, REPO)
    findings = fingerprint_findings([_finding(snippet="requires login")], lambda p: None)
    scan_id = storage.reserve_scan(_pending(repo.id, findings))
    scan = storage.scan(scan_id)
    assert scan.status == "processing" and (scan.count_new, scan.completed_at) == (0, None)
    assert storage.pending_upload(scan_id) == findings
    assert [j["idempotency_key"] for j in storage.jobs()] == [f"complete_scan:{scan_id}"]

    # A failure half-way (here: a bad job key) leaves everything as it was.
    with pytest.raises(KeyError):
        storage.complete_scan(scan_id, _triaged(repo.id, findings, [JobSpec("notify_scan", {}, key="{nope}")]))
    assert storage.scan(scan_id).status == "processing" and storage.scan_findings(scan_id) == []
    assert storage.pending_upload(scan_id) == findings and len(storage.jobs()) == 1

    follow = [JobSpec("notify_scan", {}, key="notify_scan:{scan_id}")]
    assert storage.complete_scan(scan_id, _triaged(repo.id, findings, follow)) is True
    scan = storage.scan(scan_id)
    assert scan.status == "done" and scan.count_new == 1 and scan.completed_at
    assert len(storage.scan_findings(scan_id)) == 1 and storage.pending_upload(scan_id) is None
    assert storage.jobs(kind="notify_scan")[0]["payload"] == {"scan_id": scan_id}
    # A second worker (an expired lease) changes nothing.
    assert storage.complete_scan(scan_id, _triaged(repo.id, findings, follow)) is False
    assert storage.fail_scan(scan_id, "late") is False
    assert len(storage.scan_findings(scan_id)) == 1 and storage.scan(scan_id).status == "done"


def test_a_failed_scan_keeps_its_reason(storage):
    repo = storage.ensure_repository(FORGE, REPO)
    scan_id = storage.reserve_scan(_pending(repo.id, [_finding()]))
    assert storage.fail_scan(scan_id, "the forge is down") is True
    scan = storage.scan(scan_id)
    assert scan.status == "failed" and scan.error_detail == "the forge is down"
    assert storage.pending_upload(scan_id) is None
    assert storage.complete_scan(scan_id, _triaged(repo.id, [], [])) is False


# the upload flow -----------------------------------------------------------------------------
def test_every_body_form_without_sources_waits_for_the_files(client, app, storage, stub):
    token = storage.create_upload_token(FORGE, REPO)
    # Form 3 (raw report, metadata in the query).
    raw = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    assert raw["status"] == "processing" and raw["url"].endswith(f"/api/v1/scans/{raw['id']}")
    # Form 1, as `forge-app upload` sends it when the checkout lacks the files.
    from forge_app.core.parsing import parse_report

    parsed = fingerprint_findings(list(parse_report(report(semgrep_results(BASE_FILES)), source="x").findings),
                                  lambda p: None)
    body = {"repository": REPO, "commit": BASE_SHA, "branch": "main", "tools": ["semgrep"],
            "findings": [f.to_dict() for f in parsed]}
    envelope = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"}).json()
    assert envelope["status"] == "processing"
    drain(app)
    assert sorted(stub.asked) == sorted([(p, BASE_SHA) for p in BASE_FILES] * 2)  # once per file per scan
    assert stub.closed >= 2
    for scan in (raw, envelope):
        done = get_scan(client, token, scan["id"], findings="all")
        assert done["status"] == "done" and all(has_context(f) for f in done["findings"])
    # The second scan of the branch compares with the first: nothing new.
    assert get_scan(client, token, envelope["id"])["counts"] == {"new": 0, "fixed": 0, "unchanged": 3}


def test_a_processing_scan_compares_with_what_was_uploaded_before_it(client, app, storage, stub):
    token = storage.create_upload_token(FORGE, REPO)
    first = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    drain(app)
    pending = post_raw(client, token, report(semgrep_results(HEAD_FILES)), commit=HEAD_SHA)
    # A later upload with snippets is recorded at once, before the pending one completes.
    doc = report(semgrep_results(BASE_FILES))
    for r in doc["results"]:
        r["extra"]["lines"] = BASE_FILES[r["path"]].split("\n")[r["start"]["line"] - 1]
    later = post_raw(client, token, doc, commit=BASE_SHA)
    assert later["status"] == "done" and later["baseline_scan_id"] == first["id"]
    drain(app)
    done = get_scan(client, token, pending["id"], findings="new")
    assert done["baseline_scan_id"] == first["id"]
    assert [(f["path"], f["start_line"]) for f in done["findings"]] == [("app/views.py", COPY_LINE)]


def test_a_file_that_does_not_fit_the_report_is_not_used(storage):
    repo = storage.ensure_repository(FORGE, REPO)
    findings = fingerprint_findings([_finding(snippet="requires login", start_line=40, end_line=40)], lambda p: None)
    scan_id = storage.reserve_scan(_pending(repo.id, findings))
    assert complete_upload(storage, storage.scan(scan_id), findings, {"app/views.py": BASE_FILES["app/views.py"]})
    stored = storage.scan_findings(scan_id)[0].finding
    assert stored.fingerprint == findings[0].fingerprint  # the fallback, kept


def test_no_fetcher_means_the_upload_is_recorded_at_once(client, storage):
    token = storage.create_upload_token("gitlab", "group/project")
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=BASE_SHA)
    assert answer["status"] == "done" and answer["counts"]["new"] == 3
    assert storage.jobs(kind="complete_scan") == []
    assert [j["kind"] for j in storage.jobs()] == ["notify_scan"]

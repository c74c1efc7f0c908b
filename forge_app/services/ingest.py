"""Turning a validated upload into a recorded scan: triage against the baseline, keep
identities, and queue the follow-up work (publishing on the forge, notifications)
in the same transaction.

Most uploads are recorded at once (`ingest_upload`). An upload with findings that only
the source file can fingerprint (no checkout, no snippet: `needs_source`) for a
repository whose forge can hand out files is recorded in two steps instead:
`reserve_upload` stores it as a `processing` scan with a `complete_scan` job, and that job
(forge_app/services/completion.py) fetches the files and calls `complete_upload`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from forge_app.core.envelope import Upload
from forge_app.core.fingerprint import fingerprint_findings, needs_source
from forge_app.core.linemap import ForgeDiff, LineMap, forge_line_map
from forge_app.core.models import Finding, ReportError
from forge_app.core.plans import SERVING_META, Serving, comment_instead_of_block
from forge_app.core.policy import Policy, parse_policy
from forge_app.core.semgrep_ci import carry_over
from forge_app.core.triage import (
    BaselineFinding,
    Triage,
    assign_identities,
    fallback_note,
    guessed,
    scan_tools,
    triage,
)
from forge_app.forges.registry import diff_reader_for
from forge_app.forges.sources import can_read_diffs, read_pull_request_diff
from forge_app.jobs.worker import JobContext
from forge_app.services import leases
from storage import JobSpec, NewScan, PendingScan, Repository, ScanEntry, ScanRecord, Storage

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
COMPLETE_JOB = "complete_scan"
COMPLETE_ATTEMPTS = 8  # about ten minutes of backoff (longer when the forge's rate limit says so)


@dataclass(frozen=True)
class Ingested:
    scan_id: int
    baseline_scan_id: int | None
    pending: bool = False  # recorded as `processing`: a complete_scan job finishes it


@dataclass(frozen=True)
class _Target:
    is_baseline: bool
    branch: str | None
    base_branch: str | None
    base_commit: str | None = None
    renames: Mapping[str, str] | None = None
    lines: LineMap | None = None  # the diff base_commit -> commit, when the uploader had git
    partial: bool = False  # a diff-aware `semgrep ci` scan: what it does not mention was not looked at


def current_policy(storage: Storage) -> Policy:
    return parse_policy(storage.get_policies())


def follow_up_jobs(repo: Repository, upload: Upload) -> list[JobSpec]:
    """Work that runs after the upload is answered. Keys make a retried upload
    request (same scan) never queue the same work twice."""
    return _follow_ups(repo, upload.pull_request)


def _follow_ups(repo: Repository, pull_request: int | None) -> list[JobSpec]:
    jobs = [JobSpec("notify_scan", {}, key="notify_scan:{scan_id}")]
    if pull_request is not None:
        jobs.append(JobSpec("publish_scan", {"forge": repo.forge}, key="publish_scan:{scan_id}",
                            group=f"repo:{repo.id}"))
    return jobs


def _target(storage: Storage, repo: Repository, upload: Upload) -> _Target:
    """Which branch a scan belongs to and which baseline it is compared with. When neither the
    upload nor the forge named the base branch, the branch the repository's baseline scans
    are on is the best guess (a repository on `master` must not see everything as new)."""
    fallback = repo.default_branch or storage.latest_baseline_branch(repo.id) or DEFAULT_BRANCH
    partial = bool(upload.meta.get("partial"))
    if upload.pull_request is None:
        return _Target(True, upload.branch or fallback, upload.base_branch, partial=partial)
    return _Target(False, upload.branch, upload.base_branch or fallback, upload.base_commit, upload.renames or None,
                   upload.line_changes, partial)


def _notes(repo: Repository, upload: Upload, target: _Target, pending: bool = False) -> list[str]:
    """What was guessed, stored on the scan and shown in its answer (the uploader's own notes first);
    a pending scan's fingerprints are known once it completes."""
    return [*upload.notes, *guessed(upload.branch, upload.base_branch, upload.pull_request, target.branch,
                                    target.base_branch, repo.default_branch),
            *([] if pending else fallback_note(upload.findings))]


def _triage(storage: Storage, repo: Repository, findings: Sequence[Finding], target: _Target,
            before: int | None = None, tools: Sequence[str] = ()) -> tuple[Triage, ScanRecord | None]:
    """Classify against the baseline (a branch scan: the previous scan of the branch; a PR scan:
    the latest scan of its base branch), then give new findings any identity already known."""
    compare_with = target.branch if target.is_baseline else target.base_branch
    # Per tool: each scanner's findings are compared with that scanner's last scan of the branch.
    baselines = (storage.baselines_for(repo.id, compare_with, scan_tools(tools, findings), before=before,
                                       commit=target.base_commit) if compare_with else [])
    base = [BaselineFinding(sf.identity_id, sf.finding, sf.mode, sf.id) for _, found in baselines for sf in found]
    # The diff maps base_commit's lines: it says nothing about a baseline scanned at another commit.
    lines = target.lines if baselines and all(b.commit == target.base_commit for b, _ in baselines) else None
    result, pending = triage(findings, base, current_policy(storage), dict(target.renames or {}), lines)
    if target.partial:
        result = carry_over(result)
    if pending:
        pool = storage.identity_pool(repo.id, {(f.rule_id, f.path) for f in pending})
        result = assign_identities(result, pool)
    return result, baselines[0][0] if baselines else None


MARKETPLACE_META = SERVING_META  # the serving decision (a forge's `serving`, e.g. a plan), set by the server only


def _meta(upload: Upload, serving: Serving | None = None, keep_lines: bool = False) -> dict:
    """What CI told about the scan, plus the base commit the PR was compared against."""
    meta = dict(upload.meta)
    meta.pop(MARKETPLACE_META, None)
    if serving is not None:
        meta[MARKETPLACE_META] = serving.as_meta()
    if upload.base_commit:
        meta["base_commit"] = upload.base_commit
    if upload.renames:
        meta["renames"] = upload.renames
    if keep_lines and upload.line_changes is not None:  # the complete_scan job triages later
        meta["line_changes"] = upload.line_changes.to_dict()
    return meta


def _entries(result: Triage) -> list[ScanEntry]:
    return [ScanEntry(e.finding, e.status, e.mode, e.base_line, e.identity_id, e.source_id) for e in result.entries]


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _one_at_a_time(storage: Storage, repository_id: int) -> Iterator[None]:
    """Triage reads identities and records new ones: two uploads of one repository triaged at
    once would each mint an identity for the same finding (and notify and comment twice). The
    thread lock orders this process's threads; the database lease orders processes (replicas,
    and `worker` processes completing scans)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(repository_id, threading.Lock())
    with lock, leases.held(storage, f"triage:repository:{repository_id}"):
        yield


def ingest_upload(storage: Storage, repo: Repository, upload: Upload, serving: Serving | None = None) -> Ingested:
    with _one_at_a_time(storage, repo.id):
        return _ingest(storage, repo, upload, serving)


def _plan_allows(result: Triage, serving: Serving | None) -> Triage:
    """A Marketplace plan without `block` turns block rules into comment rules."""
    return result if serving is None or serving.block_allowed else comment_instead_of_block(result)


def _ingest(storage: Storage, repo: Repository, upload: Upload, serving: Serving | None = None) -> Ingested:
    target = _target(storage, repo, upload)
    result, baseline = _triage(storage, repo, upload.findings, target, tools=upload.tools)
    result = _plan_allows(result, serving)
    scan_id = storage.record_scan(
        NewScan(
            repository_id=repo.id, commit=upload.commit, branch=target.branch, base_branch=target.base_branch,
            pull_request=upload.pull_request, is_baseline=target.is_baseline,
            base_scan_id=baseline.id if baseline else None, tools=scan_tools(upload.tools, upload.findings),
            errors=upload.errors, meta=_meta(upload, serving), blocking=result.blocking,
            entries=_entries(result), jobs=follow_up_jobs(repo, upload), notes=_notes(repo, upload, target),
        )
    )
    return Ingested(scan_id, baseline.id if baseline else None)


def wants_source(upload: Upload) -> bool:
    """Some finding can only get a context fingerprint from its file (see `needs_source`)."""
    return any(needs_source(f) for f in upload.findings)


def wants_forge_diff(upload: Upload) -> bool:
    """Whether the PR/MR's diff from the forge could decide what fingerprints may get wrong: a PR/MR scan
    without the uploader's diff holding look-alike findings (one rule, file and code more than once, such
    as a copy inserted below its original; findings that came without their code, as from `semgrep ci`,
    count as look-alikes of every finding of their rule in their file). Then the server reads the diff it
    also places comments with."""
    if upload.pull_request is None or upload.line_changes is not None or len(upload.findings) < 2:
        return False
    seen: set[tuple[str, str, str]] = set()
    for f in upload.findings:
        fp = f.fingerprint  # without its code (fallback, none), any finding of the rule in the file may be one
        key = (f.rule_id, f.path, "" if fp is None or fp.fallback else fp.code)
        if key in seen:
            return True
        seen.add(key)
    return False


def with_forge_diff(upload: Upload, diff: ForgeDiff | None) -> tuple[Upload, str]:
    """The upload with the forge diff's line mapping as its `line_changes` (and the diff's base as its
    base commit) when the diff fits it (`forge_line_map`), else as it was; and why not. Triage still
    uses the mapping only if the baseline it finds was scanned at that base commit."""
    if diff is None:
        return upload, "the forge's PR/MR diff could not be read"
    lines, why_not = forge_line_map(diff, upload.commit, upload.base_commit)
    if lines is None:
        return upload, why_not
    return dataclasses.replace(upload, line_changes=lines, base_commit=upload.base_commit or diff.base,
                               renames={**lines.renames, **upload.renames}), ""


async def use_forge_diff(context: JobContext, repository: Repository, upload: Upload) -> Upload:
    """The upload with its PR/MR's forge diff as line mapping when it wants one (`wants_forge_diff`) and
    the forge's diff fits it; else unchanged. Identity is then decided from the diff first, as with the
    uploader's own (docs/fingerprints.md, "Identity from the diff, first")."""
    if upload.pull_request is None or not wants_forge_diff(upload) \
            or not await can_read_diffs(diff_reader_for(context, repository)):
        return upload
    diff = await read_pull_request_diff(diff_reader_for(context, repository), repository, upload.pull_request)
    try:
        used, why_not = with_forge_diff(upload, diff)
    except Exception:  # a diff text nobody expected: the upload must not fail for it
        log.exception("%s: the diff of PR/MR %s could not be mapped", repository.full_name, upload.pull_request)
        used, why_not = upload, "the forge's PR/MR diff could not be read"
    if not why_not:
        return used
    log.info("%s: the diff of PR/MR %s does not decide identity: %s", repository.full_name,
             upload.pull_request, why_not)
    note = (f"look-alike findings were told apart by their fingerprints only: {why_not} (upload with "
            "--base-commit from a checkout that has the base commit to decide them by the diff)")
    return dataclasses.replace(upload, notes=[*upload.notes, note])


def reserve_upload(storage: Storage, repo: Repository, upload: Upload, serving: Serving | None = None) -> Ingested:
    """Store the upload as a `processing` scan and queue the job that completes it; the usual
    follow-up jobs are queued only once it is complete."""
    target = _target(storage, repo, upload)
    scan_id = storage.reserve_scan(
        PendingScan(
            repository_id=repo.id, commit=upload.commit, branch=target.branch, base_branch=target.base_branch,
            pull_request=upload.pull_request, is_baseline=target.is_baseline,
            tools=scan_tools(upload.tools, upload.findings),
            errors=upload.errors, meta=_meta(upload, serving, keep_lines=True), findings=upload.findings,
            jobs=[JobSpec(COMPLETE_JOB, {"forge": repo.forge}, key=COMPLETE_JOB + ":{scan_id}",
                          max_attempts=COMPLETE_ATTEMPTS)],
            notes=_notes(repo, upload, target, pending=True),
        )
    )
    return Ingested(scan_id, None, pending=True)


def paths_needing_source(findings: Sequence[Finding]) -> list[str]:
    """The files to ask the forge for, each once, in a stable order."""
    return sorted({f.path for f in findings if needs_source(f)})


def refingerprint(findings: Sequence[Finding], sources: Mapping[str, str | None]) -> list[Finding]:
    """Findings that need their source get a fingerprint from it when the file was fetched;
    the others (and those whose file is missing) keep the fingerprint they have. A file whose
    lines do not hold a finding (the report and the forge disagree) is not used."""
    out = list(findings)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        if sources.get(f.path) is not None and needs_source(f):
            groups[f.path].append(i)
    for path, indexes in groups.items():
        try:
            fresh = fingerprint_findings([findings[i] for i in indexes], sources.get)
        except ReportError as exc:
            log.warning("the file fetched for %s does not fit the report (%s); its findings keep their "
                        "context-free fingerprints", path, exc)
            continue
        for i, f in zip(indexes, fresh, strict=True):
            out[i] = f
    return out


def complete_upload(storage: Storage, scan: ScanRecord, findings: Sequence[Finding],
                    sources: Mapping[str, str | None], notes: Sequence[str] = ()) -> bool:
    """Finish a `processing` scan: fingerprint from the fetched sources, triage against the
    baseline as it was when the scan was uploaded, record everything, mark it done and queue
    its follow-up jobs, in one transaction. False when it was no longer processing."""
    repo = storage.repository(scan.repository_id)
    assert repo is not None
    target = _Target(scan.is_baseline, scan.branch, scan.base_branch, scan.meta.get("base_commit"),
                     scan.meta.get("renames"),
                     LineMap.from_dict(scan.meta["line_changes"]) if scan.meta.get("line_changes") else None,
                     bool(scan.meta.get("partial")))
    fingerprinted = refingerprint(findings, sources)
    with _one_at_a_time(storage, repo.id):
        return _complete(storage, repo, scan, target, fingerprinted, notes)


def _complete(storage: Storage, repo: Repository, scan: ScanRecord, target: _Target,
              fingerprinted: list[Finding], notes: Sequence[str]) -> bool:
    result, baseline = _triage(storage, repo, fingerprinted, target, before=scan.id, tools=scan.tools)
    result = _plan_allows(result, Serving.from_meta(scan.meta.get(MARKETPLACE_META)))
    return storage.complete_scan(
        scan.id,
        NewScan(
            repository_id=repo.id, commit=scan.commit, branch=scan.branch, base_branch=scan.base_branch,
            pull_request=scan.pull_request, is_baseline=scan.is_baseline,
            base_scan_id=baseline.id if baseline else None, tools=scan.tools, errors=[*scan.errors, *notes],
            meta=scan.meta, blocking=result.blocking, entries=_entries(result),
            notes=[*scan.notes, *fallback_note(fingerprinted)],
            jobs=_follow_ups(repo, scan.pull_request),
        ),
    )


"""Turning a validated upload into a recorded scan: triage against the baseline, keep
identities, and queue the follow-up work (publishing on the forge, notifications)
in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from forge_app.core.envelope import Upload
from forge_app.core.policy import Policy, parse_policy
from forge_app.core.triage import BaselineFinding, assign_identities, triage
from storage import JobSpec, NewScan, Repository, ScanEntry, Storage

DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class Ingested:
    scan_id: int
    baseline_scan_id: int | None


def current_policy(storage: Storage) -> Policy:
    return parse_policy(storage.get_policies())


def follow_up_jobs(repo: Repository, upload: Upload) -> list[JobSpec]:
    """Work that runs after the upload is answered. Keys make a retried upload
    request (same scan) never queue the same work twice."""
    jobs = [JobSpec("notify_scan", {}, key="notify_scan:{scan_id}")]
    if upload.pull_request is not None:
        jobs.append(JobSpec("publish_scan", {"forge": repo.forge}, key="publish_scan:{scan_id}",
                            group=f"repo:{repo.id}"))
    return jobs


def ingest_upload(storage: Storage, repo: Repository, upload: Upload) -> Ingested:
    is_baseline = upload.pull_request is None
    if is_baseline:
        branch = upload.branch or repo.default_branch or DEFAULT_BRANCH
        base_branch = upload.base_branch
        baseline = storage.baseline_for(repo.id, branch)
    else:
        branch = upload.branch
        base_branch = upload.base_branch or repo.default_branch or DEFAULT_BRANCH
        baseline = storage.baseline_for(repo.id, base_branch)
    base = [BaselineFinding(sf.identity_id, sf.finding, sf.mode, sf.id) for sf in baseline[1]] if baseline else []
    policy = current_policy(storage)
    result, pending = triage(upload.findings, base, policy)
    if pending:
        pool = storage.identity_pool(repo.id, {(f.rule_id, f.path) for f in pending})
        result = assign_identities(result, pool)
    scan_id = storage.record_scan(
        NewScan(
            repository_id=repo.id, commit=upload.commit, branch=branch, base_branch=base_branch,
            pull_request=upload.pull_request, is_baseline=is_baseline,
            base_scan_id=baseline[0].id if baseline else None, tools=sorted(set(upload.tools)),
            errors=upload.errors, meta=upload.meta, blocking=result.blocking,
            entries=[ScanEntry(e.finding, e.status, e.mode, e.base_line, e.identity_id, e.source_id)
                     for e in result.entries],
            jobs=follow_up_jobs(repo, upload),
        )
    )
    return Ingested(scan_id, baseline[0].id if baseline else None)

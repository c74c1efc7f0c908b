"""The `semgrep ci` protocol, the pure parts: what the CLI's `project_metadata` says about the scan,
how its results body becomes a forge-app upload, and when forge-app must override the CLI's verdict.

The wire format is the one the unmodified CLI 1.182.0 speaks (tests/fixtures/semgrep-ci/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from forge_app.core.envelope import SHA_RE, UploadError
from forge_app.core.models import Finding
from forge_app.core.rules import ACTIONS_KEY
from forge_app.core.triage import Triage, TriageEntry

UNIQUE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
_META_FIELDS = ("ci_job_url", "commit_author_name", "commit_author_email", "commit_author_username",
                "commit_title", "commit_timestamp", "pull_request_title", "pull_request_author_username")


@dataclass(frozen=True)
class ScanStart:
    """What `POST /api/cli/v2/scans` tells about the run."""

    unique_id: str
    repository: str
    commit: str
    is_full_scan: bool
    project_metadata: dict[str, Any]


def parse_scan_start(doc: Any) -> ScanStart:
    """Validate the body of `POST /api/cli/v2/scans`; UploadError (code, pointer) otherwise."""
    if not isinstance(doc, dict):
        raise UploadError("the body must be a JSON object with project_metadata and scan_metadata", "")
    meta = doc.get("project_metadata")
    scan_meta = doc.get("scan_metadata")
    if not isinstance(meta, dict):
        raise UploadError("project_metadata must be an object", "/project_metadata")
    if not isinstance(scan_meta, dict):
        raise UploadError("scan_metadata must be an object", "/scan_metadata")
    unique_id = scan_meta.get("unique_id")
    if not isinstance(unique_id, str) or not UNIQUE_ID_RE.match(unique_id):
        raise UploadError("unique_id must be the CLI's scan id (letters, digits and '-', at most 100)",
                          "/scan_metadata/unique_id")
    repository = meta.get("repository")
    if not isinstance(repository, str) or not repository.strip() or len(repository) > 255:
        raise UploadError("repository must name the repository (SEMGREP_REPO_NAME)", "/project_metadata/repository")
    commit = meta.get("commit")
    if not isinstance(commit, str) or not SHA_RE.match(commit.lower()):
        raise UploadError("commit must be a full 40-character SHA (run semgrep ci in a git checkout, or set "
                          "SEMGREP_COMMIT)", "/project_metadata/commit")
    full = meta.get("is_full_scan")
    if not isinstance(full, bool):
        raise UploadError("is_full_scan must be true or false", "/project_metadata/is_full_scan")
    return ScanStart(unique_id, repository.strip(), commit.lower(), full, _small_meta(meta))


def _small_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The project metadata worth keeping (short scalars only: never a token or a blob)."""
    keep = ("repository", "repo_url", "branch", "commit", "pull_request_id", "is_full_scan", "on",
            "base_sha", "start_sha", "base_branch_head_commit", "scan_environment", "repo_display_name",
            *_META_FIELDS)
    return {k: meta[k] for k in keep
            if k in meta and (meta[k] is None or isinstance(meta[k], (bool, int))
                              or (isinstance(meta[k], str) and len(meta[k]) <= 2000))}


def upload_document(meta: Mapping[str, Any], results: Any) -> dict[str, Any]:
    """A `POST /api/v1/scans`-style document (metadata plus the raw CLI body as `report`), so the results go
    through exactly the validation, fingerprinting and triage of `forge-app upload`."""
    doc: dict[str, Any] = {
        "repository": meta.get("repository"),
        "commit": meta.get("commit"),
        "branch": meta.get("branch") if isinstance(meta.get("branch"), str) else None,
        "pull_request": meta.get("pull_request_id"),
        "report": results,
        "meta": {"ci_provider": f"semgrep ci ({meta.get('scan_environment') or 'git'})",
                 **{k: meta[k] for k in _META_FIELDS if isinstance(meta.get(k), str)}},
    }
    # Some CIs give the merge base (`base_sha`), others the base branch's head (`base_branch_head_commit`), the
    # same commit `forge-app upload` takes from a pull request event's `base.sha`.
    base = meta.get("base_sha") or meta.get("base_branch_head_commit")
    if isinstance(base, str) and SHA_RE.match(base.lower()) and doc["pull_request"] not in (None, ""):
        doc["base_commit"] = base.lower()
    return doc


def check_results_body(results: Any) -> None:
    """The CLI's results body is an object with a `findings` list (and its other keys)."""
    if not isinstance(results, dict) or not isinstance(results.get("findings"), list):
        raise UploadError("the results body must be an object with a 'findings' list", "/findings")


def carry_over(result: Triage) -> Triage:
    """A partial (diff-aware) scan only sends findings in code the change touched: a baseline finding it
    does not mention was not looked at, so it stays (unchanged, copied from its baseline record) instead of
    being called fixed, and its review thread stays open."""
    entries = [TriageEntry(e.finding, "unchanged", e.mode, e.base_line, e.identity_id, e.source_id)
               if e.status == "fixed" else e for e in result.entries]
    return Triage(entries)


def cli_blocks(finding: Finding) -> bool:
    """What the CLI decided: a finding blocks when its rule's actions contain "block" (a missing key too)."""
    actions = finding.metadata.get(ACTIONS_KEY) if finding.metadata else None
    return not isinstance(actions, list) or "block" in actions


@dataclass(frozen=True)
class Verdict:
    override: bool
    reason: str
    match_based_ids: list[str]


def block_override(new_blocking: Iterable[Finding]) -> Verdict:
    """New findings forge-app blocks on that the CLI let through (the rule board changed after the rules
    were served, or a glob now blocks a rule): `app_block_override` with the reason and their ids."""
    missed = [f for f in new_blocking if not cli_blocks(f)]
    if not missed:
        return Verdict(False, "", [])
    shown = ", ".join(f"{f.rule_id} at {f.path}:{f.start_line}" for f in missed[:5])
    more = f" and {len(missed) - 5} more" if len(missed) > 5 else ""
    reason = f"forge-app policy blocks {len(missed)} new finding(s): {shown}{more}"
    ids = [f.tool_ids["semgrep.match_based_id"] for f in missed if f.tool_ids.get("semgrep.match_based_id")]
    return Verdict(True, reason, ids)

"""Webhook bodies in Semgrep's documented shapes (tests/fixtures/semgrep-webhooks).

Receivers written for Semgrep's webhooks must work unchanged, so every field of the
documented examples is present with the same name and JSON type, never null where the
example has a value: what we do not know is `""` for strings, `[]` for lists, and
column 1 for a column (the start of the line). Only the scan's `completed_at`, null in
the example too, can be null. Pure functions: all data, including timestamps, comes in
as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forge_app.core.models import Finding
from storage import ScanRecord

SEVERITY_NUMBER = {"info": 0, "warning": 1, "error": 2}
NO_SNIPPET = {"", "requires login"}  # Semgrep writes "requires login" when it withholds the code
POLICIES: Mapping[str, dict[str, Any]] = {
    "monitor": {"id": 1, "name": "Monitor", "slug": "monitor"},
    "comment": {"id": 2, "name": "Comment", "slug": "comment"},
    "block": {"id": 3, "name": "Block", "slug": "block"},
}
ACTIONS = {"monitor": [], "comment": ["comment"], "block": ["block"]}
"""`dev.semgrep.actions` per mode, as forge-app's policy reader understands them."""

DEPLOYMENT_ID = 1
"""One forge-app server is one Semgrep "deployment"."""

TEST_CHECK_ID = "forge-app.test-notification"


@dataclass(frozen=True, slots=True)
class NotifiedFinding:
    """A finding as a notification needs it: the finding, its mode and its identity."""

    finding: Finding
    mode: str
    identity: str  # the identity's fingerprint value: stable across scans
    first_seen_scan_id: int | None
    first_seen_at: str | None
    index: int = 0  # among findings of the same rule, path and code in the scan


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _joined(values: Iterable[str]) -> str:
    return ", ".join(v for v in values if v)


def git_ref(branch: str | None) -> str:
    if not branch:
        return ""
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def _vulnerability(metadata: Mapping[str, Any]) -> str:
    value = metadata.get("vulnerability")
    if isinstance(value, str):
        return value
    classes = metadata.get("vulnerability_class")
    if isinstance(classes, list):
        return _joined(str(c) for c in classes)
    return _text(classes)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _column(value: Any) -> int:
    """A 1-based column; 1 (the start of the line) when unknown."""
    column = _int(value, 1)
    return column if column >= 1 else 1


def _end_column(f: Finding, column: int) -> int:
    """The 1-based, exclusive end column. Unknown: the end of the last line when the
    snippet holds the finding's whole lines (what the parsers keep, and what a missing
    end column means in SARIF); else `column` on a one-line finding (an empty range at
    its start), 1 on a longer one."""
    known = _int(f.end_col, 0)
    if known >= 1:
        return known
    start, end = _int(f.start_line, 1), _int(f.end_line, 1)
    if f.snippet and f.snippet.strip() not in NO_SNIPPET and end >= start:
        lines = [line.rstrip("\r") for line in f.snippet.split("\n")]
        if len(lines) == end - start + 2 and lines[-1] == "":
            lines.pop()  # the snippet ended with a newline
        if len(lines) == end - start + 1:
            derived = len(lines[-1]) + 1
            return derived if end > start else max(derived, column)
    return column if end <= start else 1


def _source(finding: Finding) -> str:
    metadata = finding.metadata
    return _text(finding.rule.help_uri) or _text(metadata.get("source")) or _text(metadata.get("shortlink"))


def semgrep_finding(item: NotifiedFinding, scan: ScanRecord) -> dict[str, Any]:
    """One `{"semgrep_finding": {...}}`, field for field as Semgrep documents it."""
    f = item.finding
    source = _source(f)
    metadata = dict(f.metadata)
    metadata["dev.semgrep.actions"] = list(ACTIONS.get(item.mode, []))
    metadata["semgrep.policy"] = dict(POLICIES.get(item.mode, POLICIES["comment"]))
    if not isinstance(metadata.get("semgrep.url"), str):
        metadata["semgrep.url"] = source
    line = _int(f.start_line, 1)
    column = _column(f.start_col)
    return {
        "semgrep_finding": {
            "id": _text(item.identity),
            "ref": git_ref(scan.branch),
            "start_date": _text(item.first_seen_at),
            "check_id": _text(f.rule_id),
            "path": _text(f.path),
            "line": line,
            "column": column,
            "message": _text(f.message),
            "severity": SEVERITY_NUMBER.get(f.severity, 1),
            "index": _int(item.index, 0),
            "end_line": max(_int(f.end_line, line), line),
            "end_column": _end_column(f, column),
            "commit_date": _text(scan.meta.get("commit_timestamp")),
            "first_seen_scan_id": str(item.first_seen_scan_id) if item.first_seen_scan_id is not None else "",
            "category": _text(f.rule.category) or _text(f.metadata.get("category")),
            "cwe": _joined(f.rule.cwe),
            "license": _text(f.metadata.get("license")),
            "owasp": _joined(f.rule.owasp),
            "references": list(f.rule.references),
            "source": source,
            "technology": list(f.rule.technology),
            "vulnerability": _vulnerability(f.metadata),
            "metadata": metadata,
        }
    }


def findings_payload(items: Sequence[NotifiedFinding], scan: ScanRecord) -> list[dict[str, Any]]:
    """The findings webhook: one list with every finding notified for the first time."""
    return [semgrep_finding(item, scan) for item in items]


MAX_BATCH_FINDINGS = 1_000
MAX_BATCH_BYTES = 1_000_000


def batches(payload: Sequence[Any], encode: Callable[[Any], bytes], *, max_items: int = MAX_BATCH_FINDINGS,
            max_bytes: int = MAX_BATCH_BYTES) -> list[list[Any]]:
    """A findings payload cut into POST-sized lists, in order: at most `max_items` findings and
    `max_bytes` of encoded JSON each (a single finding bigger than that goes alone). A django-sized
    base scan is 157 POSTs of about 0.8 MB, not one of 130 MB."""
    out: list[list[Any]] = []
    current: list[Any] = []
    size = 2  # the brackets
    for item in payload:
        n = len(encode(item)) + (1 if current else 0)  # the comma
        if current and (len(current) >= max_items or size + n > max_bytes):
            out.append(current)
            current, size, n = [], 2, n - 1
        current.append(item)
        size += n
    if current or not out:
        out.append(current)
    return out


def semgrep_scan(scan: ScanRecord) -> dict[str, Any]:
    """The scan webhook, `{"semgrep_scan": {...}}`."""
    meta = scan.meta
    pr = scan.pull_request
    return {
        "semgrep_scan": {
            "deployment_id": DEPLOYMENT_ID,
            "started_at": _text(meta.get("started_at")) or _text(scan.created_at),
            "completed_at": _text(meta.get("completed_at")) or scan.completed_at or None,  # null in the example too
            "exit_code": 1 if scan.blocking else 0,
            "repository": _text(scan.repository),
            "ci_job_url": _text(meta.get("ci_job_url")),
            "environment": _text(meta.get("environment")),
            "commit": _text(scan.commit),
            "commit_committer_email": _text(meta.get("commit_committer_email")),
            "commit_timestamp": _text(meta.get("commit_timestamp")),
            "commit_author_email": _text(meta.get("commit_author_email")),
            "commit_author_name": _text(meta.get("commit_author_name")),
            "commit_author_username": _text(meta.get("commit_author_username")),
            "commit_author_image_url": _text(meta.get("commit_author_image_url")),
            "commit_authored_timestamp": _text(meta.get("commit_authored_timestamp")),
            "commit_title": _text(meta.get("commit_title")),
            "config": "",
            "on": "pull_request" if pr is not None else "push",
            "branch": scan.branch or "",
            "pull_request_timestamp": _text(meta.get("pull_request_timestamp")),
            "pull_request_author_username": _text(meta.get("pull_request_author_username")) if pr else "",
            "pull_request_author_image_url": _text(meta.get("pull_request_author_image_url")) if pr else "",
            "pull_request_id": str(pr) if pr is not None else "",
            "pull_request_title": _text(meta.get("pull_request_title")) if pr else "",
            "ignored_files": [],
            "id": str(scan.id),
        }
    }


def syntactic_indexes(findings: Sequence[Finding]) -> list[int]:
    """Semgrep's `index`: the position of a finding among those of the same rule, path
    and flagged code in one scan (in line order), which tells identical matches apart."""
    order = sorted(range(len(findings)), key=lambda i: (findings[i].start_line, findings[i].start_col or 0, i))
    seen: dict[tuple[str, str, str], int] = {}
    out = [0] * len(findings)
    for i in order:
        f = findings[i]
        key = (f.rule_id, f.path, f.fingerprint.code if f.fingerprint else f.key)
        out[i] = seen.get(key, 0)
        seen[key] = out[i] + 1
    return out


def sample_finding(now_iso: str) -> NotifiedFinding:
    """The sample the `test` button sends: a real-looking finding, clearly marked."""
    finding = Finding(
        rule_id=TEST_CHECK_ID,
        path="forge-app/test-notification.txt",
        start_line=1,
        end_line=1,
        start_col=1,
        end_col=2,
        message="This is a test notification from forge-app: the integration works. It is not a real finding.",
        severity="info",
        metadata={"forge_app.test": True},
    )
    return NotifiedFinding(finding, "monitor", "forge-app-test-notification", None, now_iso)


def sample_scan(now_iso: str) -> ScanRecord:
    """A stand-in scan for test notifications (Slack, email, the findings `ref`)."""
    return ScanRecord(
        id=0, repository_id=0, repository="forge-app/test-notification", forge="test", commit="0" * 40,
        branch="forge-app-test", base_branch=None, pull_request=None, status="done", count_new=1, count_fixed=0,
        count_unchanged=0, blocking=False, is_baseline=True, base_scan_id=None, errors=[], meta={},
        created_at=now_iso, completed_at=now_iso,
    )

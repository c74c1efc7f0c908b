"""Plain records the storage layer hands out and takes in: named by what the app needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forge_app.core.models import Finding


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    forge: str
    full_name: str
    default_branch: str | None = None
    installation_id: int | None = None
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as recorded in one scan, with the identity it was matched to."""

    id: int
    scan_id: int
    identity_id: int
    status: str  # new | unchanged | fixed
    mode: str
    base_line: int | None
    first_seen: bool
    finding: Finding


@dataclass(frozen=True, slots=True)
class ScanRecord:
    id: int
    repository_id: int
    repository: str
    forge: str
    commit: str
    branch: str | None
    base_branch: str | None
    pull_request: int | None
    status: str
    count_new: int
    count_fixed: int
    count_unchanged: int
    blocking: bool
    is_baseline: bool
    base_scan_id: int | None
    errors: list[str]
    meta: dict[str, Any]
    created_at: str
    completed_at: str | None
    error_detail: str | None = None
    tools: list[str] = field(default_factory=list)
    tool_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # tool -> {new, fixed, unchanged}
    notes: list[str] = field(default_factory=list)  # what the uploader or the server had to guess


@dataclass(slots=True)
class ScanEntry:
    """One row of a scan to record: `identity_id` None means a brand-new identity."""

    finding: Finding
    status: str
    mode: str
    base_line: int | None = None
    identity_id: int | None = None
    copy_from: int | None = None  # a fixed finding: copy its full record from this findings row


@dataclass(slots=True)
class JobSpec:
    kind: str
    payload: dict[str, Any]
    key: str | None = None
    group: str | None = None
    run_at: float | None = None
    max_attempts: int = 12


@dataclass(slots=True)
class NewScan:
    repository_id: int
    commit: str
    branch: str | None
    base_branch: str | None
    pull_request: int | None
    is_baseline: bool
    base_scan_id: int | None
    tools: list[str]
    errors: list[str]
    meta: dict[str, Any]
    entries: list[ScanEntry]
    blocking: bool
    jobs: list[JobSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PendingScan:
    """An upload accepted before it can be triaged: some findings wait for their source files.

    Stored as a scan in status `processing` with its findings kept aside; `jobs` (the work
    that completes it) are queued in the same transaction."""

    repository_id: int
    commit: str
    branch: str | None
    base_branch: str | None
    pull_request: int | None
    is_baseline: bool
    tools: list[str]
    errors: list[str]
    meta: dict[str, Any]
    findings: list[Finding]
    jobs: list[JobSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    key: str | None
    group: str | None
    attempts: int
    max_attempts: int

"""Decide, for one uploaded scan, what is new, fixed and unchanged, and which identity each finding has.

Pure: the caller supplies the baseline and the pool of identities already known in
the repository (from storage), and gets back plain entries to record.

- Status compares with the baseline only: a PR/MR scan against its base branch, a
  branch scan against the previous scan of that branch.
- Identity is inherited from the matched baseline finding, else from a known identity
  (a previous scan of the same PR, another PR, a merged branch), else it is new:
  `first_seen` is what makes a notification go out exactly once per repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forge_app.core.diff import classify
from forge_app.core.linemap import LineMap
from forge_app.core.models import Finding
from forge_app.core.policy import Policy, mode_for


@dataclass(slots=True)
class TriageEntry:
    finding: Finding
    status: str  # new | unchanged | fixed
    mode: str
    base_line: int | None
    identity_id: int | None  # None: first seen in this scan
    source_id: int | None = None  # for a fixed finding: the baseline record it came from

    @property
    def first_seen(self) -> bool:
        return self.identity_id is None


@dataclass(slots=True)
class Triage:
    entries: list[TriageEntry]

    @property
    def blocking(self) -> bool:
        return any(e.status == "new" and e.mode == "block" for e in self.entries)

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e.status == status)


@dataclass(frozen=True, slots=True)
class BaselineFinding:
    identity_id: int
    finding: Finding
    mode: str
    source_id: int | None = None


class _Modes:
    """mode_for, memoised per rule and its actions: 20,000 findings share a few hundred rules."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, f: Finding) -> str:
        actions = f.metadata.get("dev.semgrep.actions") if f.metadata else None
        key = (f.rule_id, "" if actions is None else repr(actions))
        mode = self.cache.get(key)
        if mode is None:
            mode = self.cache[key] = mode_for(f.rule_id, f.metadata, self.policy)
        return mode


def scan_tools(reported: Sequence[str], findings: Sequence[Finding]) -> list[str]:
    """The tools a scan ran, for per-tool baselines: each report's tool (a SARIF log with several
    runs names them "a, b") and each finding's, sorted. A tool that found nothing still ran:
    its earlier findings are then fixed."""
    tools = {t.strip() for entry in reported for t in entry.split(", ") if t.strip()}
    tools.update(f.tool for f in findings)
    return sorted(tools)


def guessed(branch: str | None, base_branch: str | None, pull_request: int | None, filed_under: str | None,
            compared_with: str | None, default_branch: str | None) -> list[str]:
    """The server's guesses about one upload, one sentence each (stored as the scan's notes)."""
    notes = []
    if pull_request is None and not branch and filed_under:
        notes.append(f"no branch was given: the scan is filed under {filed_under!r}"
                     + ("" if default_branch == filed_under else " (where this repository's branch scans are)")
                     + "; pass --branch (or the `branch` field)")
    if pull_request is not None and not base_branch and compared_with:
        notes.append(f"no base branch was given: PR/MR {pull_request} is compared with {compared_with!r}"
                     + ("" if default_branch == compared_with else
                        " (the branch of the latest branch scan)") + "; pass --base-branch")
    return notes


def fallback_note(findings: Sequence[Finding]) -> list[str]:
    """A note when findings had to be fingerprinted without their code."""
    fallback = sum(1 for f in findings if f.fingerprint is None or f.fingerprint.fallback)
    if not fallback:
        return []
    return [f"{fallback} of {len(findings)} findings have neither their code nor a snippet: they are matched "
            "by rule, file and place only (upload with `forge-app upload` from the checkout)"]


def triage(
    head: Sequence[Finding],
    baseline: Sequence[BaselineFinding],
    policy: Policy,
    renames: dict[str, str] | None = None,
    lines: LineMap | None = None,
) -> tuple[Triage, list[Finding]]:
    """First pass: classify against the baseline. Returns the triage and the head
    findings that still need an identity (match them with `assign_identities`).
    A fixed finding keeps the mode it had when it was recorded. `lines` (the diff from the
    baseline's commit to the scanned one) decides identity first where it can."""
    base_of = {id(b.finding): b for b in baseline}
    result = classify([b.finding for b in baseline], list(head), renames, lines=lines)
    modes = _Modes(policy)
    entries: list[TriageEntry] = []
    for h, b in result.unchanged:
        entries.append(TriageEntry(h, "unchanged", modes(h), b.start_line, base_of[id(b)].identity_id))
    for b in result.fixed:
        known = base_of[id(b)]
        entries.append(TriageEntry(b, "fixed", known.mode, b.start_line, known.identity_id, known.source_id))
    for h in result.new:
        entries.append(TriageEntry(h, "new", modes(h), None, None))
    return Triage(entries), list(result.new)


def assign_identities(triaged: Triage, pool: Sequence[tuple[int, Finding]]) -> Triage:
    """Second pass: new findings that match an identity already known in the repository
    (and not already claimed by this scan) keep it, so they are never notified twice."""
    claimed = {e.identity_id for e in triaged.entries if e.identity_id is not None}
    candidates = [(ident, f) for ident, f in pool if ident not in claimed]
    pending = [e for e in triaged.entries if e.identity_id is None]
    if not candidates or not pending:
        return triaged
    identity_of = {id(f): ident for ident, f in candidates}
    entry_of = {id(e.finding): e for e in pending}
    # No pairing by place here: a code-less identity from long ago is no evidence that a new
    # finding of the same rule and file is the same one.
    matched = classify([f for _, f in candidates], [e.finding for e in pending], pair_by_place=False)
    for h, b in matched.unchanged:
        entry_of[id(h)].identity_id = identity_of[id(b)]
    return triaged

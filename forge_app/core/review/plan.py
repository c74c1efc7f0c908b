"""Deciding what a scan publishes on a PR/MR: pure, so every forge behaves the same.

- New `comment`/`block` findings whose lines are in the diff become inline comments
  (any line of a hunk, or only added lines, as the forge's `Rendering` says), with a
  suggestion when the fix's lines lie in one hunk and the forge has a suggestion syntax;
- other new `comment`/`block` findings go to the summary;
- `monitor` findings are never commented;
- a finding that already has a comment on this PR gets nothing new;
- comments whose finding is no longer present are resolved;
- resolved comments whose finding is new again (a reverted fix) are reopened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from forge_app.core.models import Finding
from forge_app.core.review.patch import FileDiff, Hunk
from forge_app.core.review.render import Counts, finding_comment, marker_key
from forge_app.core.review.style import Rendering

COMMENTED_MODES = ("comment", "block")


@dataclass(frozen=True, slots=True)
class ReviewItem:
    identity_id: int
    finding: Finding
    mode: str


@dataclass(frozen=True, slots=True)
class PlannedComment:
    item: ReviewItem
    path: str
    line: int  # the line the comment is attached to (a `range` suggestion: the last line of the range)
    start_line: int | None  # first line of a multi-line range, else None
    body: str
    suggestion: bool
    marker: str = ""  # the key in the body's hidden marker (render.marker_key)


@dataclass(slots=True)
class ReviewPlan:
    comments: list[PlannedComment] = field(default_factory=list)
    outside: list[ReviewItem] = field(default_factory=list)
    resolve: list[int] = field(default_factory=list)  # identity ids whose threads to resolve
    reopen: list[int] = field(default_factory=list)  # identity ids whose resolved threads to reopen
    counts: Counts = field(default_factory=lambda: Counts(0, 0, 0))


def _lines_ok(hunk: Hunk, start: int, end: int, added_only: bool) -> bool:
    return hunk.covers_added(start, end) if added_only else hunk.covers_new(start, end)


def _hunk_with(file: FileDiff, line: int, added_only: bool) -> Hunk | None:
    for hunk in file.hunks:
        if (line in hunk.added) if added_only else hunk.has_new_line(line):
            return hunk
    return None


def anchor(finding: Finding, file: FileDiff | None, style: Rendering) -> tuple[int, int | None, bool] | None:
    """(line, start_line, suggestion) for an inline comment, or None when outside the diff."""
    if file is None or file.binary:
        return None
    added_only = not style.comments_on_context_lines
    fix = finding.fix
    if fix is not None:
        hunk = _hunk_with(file, fix.start_line, added_only)
        if hunk is not None and _lines_ok(hunk, fix.start_line, fix.end_line, added_only):
            if style.suggestion == "range":
                return fix.end_line, (fix.start_line if fix.end_line > fix.start_line else None), True
            if style.suggestion == "offset":
                return fix.start_line, None, True
    lines = [n for n in range(finding.start_line, finding.end_line + 1) if _hunk_with(file, n, added_only)]
    if not lines:
        return None
    last = lines[-1]
    hunk = _hunk_with(file, last, added_only)
    assert hunk is not None
    first = min(n for n in lines if _lines_ok(hunk, n, last, added_only))
    return last, (first if first < last else None), False


def plan_review(
    new_items: Sequence[ReviewItem],
    *,
    present_identities: Iterable[int],
    posted: Mapping[int, bool],
    diff: Mapping[str, FileDiff],
    style: Rendering,
    counts: Counts,
    scan_url: str | None = None,
) -> ReviewPlan:
    """`posted` maps identity ids already commented on this PR to whether the thread is resolved."""
    plan = ReviewPlan(counts=counts)
    present = set(present_identities)
    for item in sorted(new_items, key=lambda i: (i.finding.path, i.finding.start_line, i.finding.rule_id)):
        if item.mode not in COMMENTED_MODES:
            continue
        where = anchor(item.finding, diff.get(item.finding.path), style)
        if where is None:
            plan.outside.append(item)
            continue
        if item.identity_id in posted:
            continue
        line, start_line, suggestion = where
        key = marker_key(item.finding.key, item.identity_id)
        body = finding_comment(item.finding, item.mode, style, as_suggestion=suggestion, scan_url=scan_url,
                               key=key)
        plan.comments.append(PlannedComment(item, item.finding.path, line, start_line, body, suggestion, key))
    plan.resolve = sorted(i for i, resolved in posted.items() if not resolved and i not in present)
    # A fix that was reverted: the finding is new again, in the diff or not, so its resolved thread
    # is reopened with a reply (never a second comment).
    plan.reopen = sorted({i.identity_id for i in new_items
                          if i.mode in COMMENTED_MODES and posted.get(i.identity_id) is True})
    return plan

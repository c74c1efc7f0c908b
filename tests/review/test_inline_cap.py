"""FORGE_APP_MAX_INLINE_COMMENTS: blocking first, then the most severe; the rest go to the summary."""

from __future__ import annotations

from forge_app.core.models import Finding
from forge_app.core.review.plan import PlannedComment, ReviewItem
from forge_app.forges.flow import _with_note, cap_comments


def _planned(i: int, mode: str, severity: str) -> PlannedComment:
    finding = Finding(f"rule.{i}", f"f{i}.py", 1, 1, "m", severity)
    return PlannedComment(ReviewItem(i, finding, mode), finding.path, 1, None, "body", False)


def test_the_cap_keeps_blocking_then_most_severe_findings():
    comments = [_planned(1, "comment", "info"), _planned(2, "comment", "error"), _planned(3, "block", "info"),
                _planned(4, "comment", "warning"), _planned(5, "block", "error")]
    kept, rest = cap_comments(comments, 3)
    assert [c.item.identity_id for c in kept] == [5, 3, 2]
    assert sorted(c.item.identity_id for c in rest) == [1, 4]
    assert cap_comments(comments, 50) == (comments, [])


def test_the_summary_says_why_some_were_not_commented_inline():
    body = _with_note("table\n\n[Scan details](http://x/1)", "\n\n2 of these are past the limit")
    assert body == "table\n\n2 of these are past the limit\n\n[Scan details](http://x/1)"
    assert _with_note("table", "") == "table"

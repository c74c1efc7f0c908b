"""The pure review core: diff parsing, anchoring, suggestions, markers, resolution."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forge_app.core.models import Finding, Fingerprint, Fix
from forge_app.core.review.patch import parse_git_diff, parse_hunks
from forge_app.core.review.plan import ReviewItem, anchor, plan_review
from forge_app.core.review.render import Counts, fence, finding_comment, markers_in, summary_comment
from forge_app.forges.github import RENDERING as GITHUB_STYLE
from forge_app.forges.gitlab import RENDERING as GITLAB_STYLE

PATCH = """@@ -1,4 +1,5 @@
 import os
+import subprocess

 def a():
     pass
@@ -20,3 +21,4 @@ def b():
     x = 1
+    eval(x)
+    exec(x)
     return x
"""


def make(line: int, end: int | None = None, fix: Fix | None = None, fp: str = "f" * 32, path: str = "a.py") -> Finding:
    return Finding(rule_id="r", path=path, start_line=line, end_line=end or line, message="m",
                   fix=fix, fingerprint=Fingerprint(fp, "c" * 16), snippet="eval(x)")


def test_hunks_know_added_and_context_lines():
    hunks = parse_hunks(PATCH)
    assert [sorted(h.added) for h in hunks] == [[2], [22, 23]]
    assert 1 in hunks[0].context and 21 in hunks[1].context and 24 in hunks[1].context
    assert not hunks[0].has_new_line(10)


def test_git_diff_with_rename_binary_and_deletion():
    diff = (
        "diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n"
        "--- a/old.py\n+++ b/new.py\n@@ -1,2 +1,3 @@\n a\n+b\n c\n"
        "diff --git a/img.png b/img.png\nBinary files a/img.png and b/img.png differ\n"
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    files = parse_git_diff(diff)
    assert files["new.py"].old_path == "old.py" and files["new.py"].is_added(2)
    assert files["img.png"].binary
    assert files["gone.py"].deleted


def test_github_anchors_on_any_hunk_line_and_gitlab_only_on_added_lines():
    diff = parse_git_diff("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n" + PATCH)["a.py"]
    assert anchor(make(21), diff, GITHUB_STYLE) == (21, None, False)  # a context line
    assert anchor(make(21), diff, GITLAB_STYLE) is None
    assert anchor(make(22, 23), diff, GITHUB_STYLE) == (23, 22, False)
    assert anchor(make(22, 23), diff, GITLAB_STYLE) == (23, 22, False)
    assert anchor(make(50), diff, GITHUB_STYLE) is None


def test_suggestion_only_when_the_fix_lies_in_one_hunk():
    diff = parse_git_diff("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n" + PATCH)["a.py"]
    inside = make(22, fix=Fix(22, 23, ("    x.get()",)))
    assert anchor(inside, diff, GITHUB_STYLE) == (23, 22, True)
    assert anchor(inside, diff, GITLAB_STYLE) == (22, None, True)
    across = make(2, fix=Fix(2, 22, ("y",)))  # spans two hunks
    _, _, suggestion = anchor(across, diff, GITHUB_STYLE)
    assert suggestion is False
    body = finding_comment(across, "block", GITHUB_STYLE, as_suggestion=False)
    assert "```suggestion" not in body and "Suggested fix for lines 2–22" in body


def test_plan_comments_new_findings_once_and_resolves_vanished_ones():
    diff = parse_git_diff("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n" + PATCH)
    items = [ReviewItem(1, make(22, fp="1" * 32), "block"), ReviewItem(2, make(23, fp="2" * 32), "comment"),
             ReviewItem(3, make(99, fp="3" * 32), "comment"), ReviewItem(4, make(2, fp="4" * 32), "monitor")]
    plan = plan_review(items, present_identities={1, 2, 3, 4}, posted={2: False, 7: False, 8: True}, diff=diff,
                       style=GITHUB_STYLE, counts=Counts(4, 0, 0, 1))
    assert [c.item.identity_id for c in plan.comments] == [1]  # 2 already posted, 3 outside, 4 monitor
    assert [i.identity_id for i in plan.outside] == [3]
    assert plan.resolve == [7]  # 8 is already resolved
    assert markers_in(plan.comments[0].body) == {"1" * 32 + "#1"}
    assert plan.reopen == []


def test_plan_reopens_resolved_threads_whose_finding_is_new_again():
    """A reverted fix: the resolved thread is reopened (in the diff or not), never commented twice."""
    diff = parse_git_diff("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n" + PATCH)
    items = [ReviewItem(1, make(22, fp="1" * 32), "block"), ReviewItem(3, make(99, fp="3" * 32), "comment"),
             ReviewItem(4, make(2, fp="4" * 32), "monitor"), ReviewItem(5, make(23, fp="5" * 32), "comment")]
    plan = plan_review(items, present_identities={1, 3, 4, 5, 6},
                       posted={1: True, 3: True, 4: True, 5: False, 6: True, 7: True}, diff=diff,
                       style=GITHUB_STYLE, counts=Counts(4, 0, 0, 1))
    assert plan.comments == []
    assert plan.reopen == [1, 3]  # 4 is monitor, 5 is open, 6 is not new (unchanged), 7 is gone
    assert plan.resolve == []


def test_identical_findings_get_distinct_markers():
    """Two copies of one line with the same surroundings share a fingerprint value; each
    comment must still name its own finding, or the wrong thread gets resolved."""
    diff = parse_git_diff("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n" + PATCH)
    items = [ReviewItem(1, make(22, fp="9" * 32), "comment"), ReviewItem(2, make(23, fp="9" * 32), "comment")]
    plan = plan_review(items, present_identities={1, 2}, posted={}, diff=diff, style=GITHUB_STYLE,
                       counts=Counts(2, 0, 0))
    assert [c.marker for c in plan.comments] == ["9" * 32 + "#1", "9" * 32 + "#2"]
    assert [markers_in(c.body) for c in plan.comments] == [{"9" * 32 + "#1"}, {"9" * 32 + "#2"}]


def test_summary_lists_outside_findings_and_escapes_pipes():
    body = summary_comment([(make(9), "block")], Counts(1, 0, 0, 1), "http://x/s/1", GITHUB_STYLE)
    assert "`a.py:9`" in body and "forge-app:summary" in body and "http://x/s/1" in body


@given(st.text(alphabet="`a\n", max_size=40))
def test_a_fence_is_never_closed_by_its_content(text):
    block = fence(text.split("\n"))
    opening = block.split("\n", 1)[0]
    inner = block[len(opening) + 1 : -len(opening) - 1]
    assert opening not in inner

"""Line mapping from a unified diff: every untouched head line maps to its base line, every
changed one to nothing, whatever the context size, and the diff's renames are kept."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.core.linemap import LineMap, line_map_from_diff, parse_unified_diff, validate_line_changes

WORDS = st.sampled_from(["a", "b", "c", "x = eval(a)", "", "pass"])


def _diff(old: list[str], new: list[str], n: int) -> str:
    body = difflib.unified_diff([s + "\n" for s in old], [s + "\n" for s in new], "a/m.py", "b/m.py", n=n)
    return "diff --git a/m.py b/m.py\n" + "".join(body)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, max_size=30), st.lists(WORDS, max_size=30), st.sampled_from([0, 1, 3]))
def test_untouched_lines_map_to_their_base_line_and_changed_ones_to_none(old, new, n):
    lm = line_map_from_diff(_diff(old, new, n))
    expect: dict[int, int | None] = {}
    for tag, i1, _i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        for j in range(j1, j2):
            expect[j + 1] = (i1 + (j - j1) + 1) if tag == "equal" else None
    for line, base in expect.items():
        place = lm.base_place("m.py", line, line)
        assert (place[1] if place else None) == base, (line, place)
    # a two-line span maps only when both lines and the break between them are untouched
    for line in range(1, len(new)):
        a, b = expect[line], expect[line + 1]
        place = lm.base_place("m.py", line, line + 1)
        assert place == (("m.py", a, b) if a is not None and b == a + 1 else None)


def test_round_trip_and_validation():
    lm = line_map_from_diff(_diff(["a", "b"], ["a", "x", "b"], 0))
    doc = lm.to_dict()
    assert validate_line_changes(doc) is None
    again = LineMap.from_dict(doc)
    assert again.base_place("m.py", 3, 3) == ("m.py", 2, 2)
    assert validate_line_changes({"blocks": {"m.py": [[1, 0, 1, 1]]}}) is not None
    assert validate_line_changes({"blocks": {"m.py": [["1", 1, 1, 1]]}}) is not None
    assert validate_line_changes([]) is not None


GIT_DIFF = """\
diff --git a/src/old.py b/src/new.py
similarity index 90%
rename from src/old.py
rename to src/new.py
index 1111111..2222222 100644
--- a/src/old.py
+++ b/src/new.py
@@ -3,0 +4,2 @@ def f():
+    y = 1
+    z = 2
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 3333333..0000000
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-x = 1
diff --git a/fresh.py b/fresh.py
new file mode 100644
index 0000000..4444444
--- /dev/null
+++ b/fresh.py
@@ -0,0 +1 @@
+x = 1
diff --git a/moved.py b/elsewhere/moved.py
similarity index 100%
rename from moved.py
rename to elsewhere/moved.py
"""


def test_git_renames_added_and_deleted_files():
    changes = {(c.old_path, c.new_path) for c in parse_unified_diff(GIT_DIFF)}
    assert changes == {("src/old.py", "src/new.py"), ("gone.py", None), (None, "fresh.py"),
                       ("moved.py", "elsewhere/moved.py")}
    lm = line_map_from_diff(GIT_DIFF)
    assert lm.renames == {"src/old.py": "src/new.py", "moved.py": "elsewhere/moved.py"}
    assert lm.base_place("src/new.py", 3, 3) == ("src/old.py", 3, 3)
    assert lm.base_place("src/new.py", 4, 4) is None
    assert lm.base_place("src/new.py", 6, 7) == ("src/old.py", 4, 5)
    assert lm.base_place("elsewhere/moved.py", 9, 9) == ("moved.py", 9, 9)
    assert lm.base_place("fresh.py", 1, 1) is None
    assert lm.base_place("untouched.py", 7, 8) == ("untouched.py", 7, 8)

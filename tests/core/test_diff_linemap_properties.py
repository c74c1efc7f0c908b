"""With the diff at hand, a finding on untouched lines is always the base finding at its
mapped line, whatever copies appear around it (directly next to it included)."""

from __future__ import annotations

import difflib

from hypothesis import given
from hypothesis import strategies as st

from forge_app.core.diff import classify
from forge_app.core.linemap import line_map_from_diff
from tests.core.test_diff_properties import PATH, SETTINGS, Line, fingerprinted, join, programs, render


def line_map(base: list[Line], head: list[Line]):
    a, b = render(base).splitlines(True), render(head).splitlines(True)
    text = f"diff --git a/{PATH} b/{PATH}\n" + "".join(difflib.unified_diff(a, b, f"a/{PATH}", f"b/{PATH}", n=0))
    equal = {}
    for tag, i1, i2, j1, _ in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "equal":
            equal.update({j1 + k + 1: i1 + k + 1 for k in range(i2 - i1)})
    return line_map_from_diff(text), equal


@SETTINGS
@given(programs(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.booleans()),
                            min_size=1, max_size=6))
def test_untouched_findings_keep_their_base_line_whatever_is_copied_around_them(funcs, edits) -> None:
    base = join(funcs)
    head = list(base)
    for src, dst, delete in edits:
        if delete and head:
            del head[src % len(head)]
        else:  # a copy of any line (often a flagged one) anywhere, next to its original too
            head.insert(dst % (len(head) + 1), head[src % len(head)] if head else Line("", -1))
    lm, equal = line_map(base, head)
    b, h = fingerprinted(base), fingerprinted(head)
    result = classify(b, h, lines=lm)
    pairs = {(hf.start_line, bf.start_line) for hf, bf in result.unchanged}
    base_flagged = {f.start_line for f in b}
    for f in h:
        if equal.get(f.start_line) in base_flagged:
            assert (f.start_line, equal[f.start_line]) in pairs
    # and the counts stay right: every base finding is either unchanged or fixed, once
    assert len(result.unchanged) + len(result.fixed) == len(b)
    assert len(result.unchanged) + len(result.new) == len(h)

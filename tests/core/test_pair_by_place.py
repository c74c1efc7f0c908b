"""Pairing leftover findings by place (fallback fingerprints) is O(n log n) and gives what
the plain nearest-first search gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.core.diff import DiffResult, _pair_by_place, _Shifts
from forge_app.core.models import Finding, Fingerprint


def reference(result: DiffResult) -> list[tuple[int, int]]:
    """The quadratic search it replaced: nearest expected line, then lower line, then listed first."""
    paired: set[int] = set()
    out = []
    for h in sorted(result.new, key=lambda f: (f.path, f.start_line)):
        cands = [b for b in result.fixed if id(b) not in paired and b.rule_id == h.rule_id and b.path == h.path
                 and (h.fingerprint.fallback or b.fingerprint.fallback)]
        if cands:
            best = min(cands, key=lambda b: (abs(b.start_line - h.start_line), b.start_line))
            paired.add(id(best))
            out.append((h.start_line, best.start_line, best.message))
    return sorted(out)


def finding(line: int, fallback: bool, tag: str, rule: str = "r") -> Finding:
    return Finding(rule, "a.py", line, line, tag, fingerprint=Fingerprint(tag, tag, fallback=fallback))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.booleans(), st.sampled_from("rs")), max_size=25),
       st.lists(st.tuples(st.integers(1, 30), st.booleans(), st.sampled_from("rs")), max_size=25))
def test_same_pairs_as_the_nearest_first_search(heads, bases):
    def build():
        return DiffResult(new=[finding(ln, fb, f"h{i}", r) for i, (ln, fb, r) in enumerate(heads)],
                          fixed=[finding(ln, fb, f"b{i}", r) for i, (ln, fb, r) in enumerate(bases)])
    want = reference(build())
    result = build()
    shifts = _Shifts()
    shifts.freeze()
    _pair_by_place(result, {}, shifts)
    assert sorted((h.start_line, b.start_line, b.message) for h, b in result.unchanged) == want

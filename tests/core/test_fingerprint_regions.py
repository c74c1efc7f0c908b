"""Regions too small to identify anything (ruff's S101 on `assert` alone, RUF001 on one
character) are widened to the whole line for identity; the reported region is kept."""

from __future__ import annotations

from forge_app.core.diff import classify
from forge_app.core.fingerprint import fingerprint_findings, fingerprint_snippet, fingerprint_source
from forge_app.core.models import Finding


def ruff(text: str, rule: str, token: str) -> list[Finding]:
    """A finding on every occurrence of `token`, with exactly its columns (as ruff reports them)."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        start = line.find(token)
        while start >= 0:
            out.append(Finding(rule, "t.py", n, n, "m", start_col=start + 1, end_col=start + len(token) + 1))
            start = line.find(token, start + 1)
    return out


def classified(base: str, head: str, rule: str, token: str):
    b = fingerprint_findings(ruff(base, rule, token), lambda p: base)
    h = fingerprint_findings(ruff(head, rule, token), lambda p: head)
    return classify(b, h)


def test_a_changed_assert_is_not_matched_to_a_deleted_one():
    base = "def t():\n    assert a == 1\n    x = 1\n    assert b == 2\n"
    head = "def t():\n    assert a == 3\n    x = 1\n"
    r = classified(base, head, "S101", "assert")
    assert [f.start_line for f in r.new] == [2] and sorted(f.start_line for f in r.fixed) == [2, 4]


def test_findings_on_an_added_line_are_the_new_ones():
    untouched = 's = "ｈｅｌｌｏｏｏ"'
    base = f"def t():\n    {untouched}\n    return s\n"
    head = f"def t():\n    p = \"ｐｌｅａｓｅ！\"\n    {untouched}\n    return s\n"
    b = fingerprint_findings([f for ch in "ｈｅｌｏ" for f in ruff(base, "RUF001", ch)], lambda p: base)
    h = fingerprint_findings([f for ch in "ｈｅｌｏｐａｓ！" for f in ruff(head, "RUF001", ch)], lambda p: head)
    r = classify(b, h)
    assert {f.start_line for f in r.new} == {2} and r.fixed == []
    assert {(x.start_line, y.start_line) for x, y in r.unchanged} == {(3, 2)}
    assert len(r.unchanged) == len(b)


def test_the_reported_region_is_kept_and_real_matches_are_not_widened():
    f = Finding("S101", "t.py", 1, 1, "m", start_col=5, end_col=11, snippet="    assert x")
    fp = fingerprint_source(f, "    assert x\n")
    assert fp.code == fingerprint_snippet(f).code  # source and snippet agree on the widened code
    g = Finding("S101", "t.py", 1, 1, "m", start_col=5, end_col=11)
    assert fingerprint_source(g, "    assert y\n").code != fp.code  # the whole line decides
    e1 = Finding("eval", "t.py", 1, 1, "m", start_col=5, end_col=12)
    e2 = Finding("eval", "t.py", 1, 1, "m", start_col=10, end_col=17)
    # `eval(a)` is a real match: the rest of the line does not count
    assert fingerprint_source(e1, "x = eval(a)  # one\n").code == fingerprint_source(e2, "result = eval(a)\n").code


# ---- the dense path (all line hashes at once) gives exactly the lazy path's fingerprints ----

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from forge_app.core import fingerprint as fpmod  # noqa: E402

LINE = st.sampled_from(["", "   ", "\t", "x = eval(a)\r", "ab\r\r", "  assert x", "é = 1", "\u3000y", "a", "if b:",
                       "ｈ！"])


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12), st.lists(st.tuples(st.integers(1, 12), st.integers(0, 12),
                                                                   st.integers(0, 14), st.booleans()), max_size=12))
def test_dense_and_lazy_fingerprints_agree(lines, spans):
    text = "\n".join(lines)
    findings = []
    for line, s, e, cols in spans:
        line = min(line, len(lines))
        findings.append(Finding("r", "t.py", line, line, "m", start_col=s + 1 if cols else None,
                                end_col=e + 1 if cols else None))
    lazy, dense = fpmod._Source("t.py", text), fpmod._Source("t.py", text)
    dense.densify()
    for f in findings:
        assert lazy.fingerprint(f) == dense.fingerprint(f), f

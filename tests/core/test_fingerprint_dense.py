"""The fast paths of fingerprint_findings (bulk tables for dense files, lazy hashes for sparse ones) give
exactly the fingerprints of the definition in docs/fingerprints.md, written out plainly below."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.core import fingerprint as fpmod
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fingerprint


def _squash(s: str) -> bytes:
    return "".join(s.split()).encode("utf-8", "surrogatepass")


def _h(data: bytes, size: int) -> str:
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def reference(f: Finding, text: str) -> Fingerprint:
    """docs/fingerprints.md, one finding at a time, no caches, no tables."""
    lines = text.split("\n")
    start, end, end_col = f.start_line, max(f.start_line, f.end_line), f.end_col
    if end != f.end_line:
        end_col = None
    if end > start and end_col == 1:  # the match took the newline: it ends on the line before
        end, end_col = end - 1, None
    flagged = [ln.rstrip("\r") for ln in lines[start - 1:end]]
    s = 0 if f.start_col is None else f.start_col - 1
    e = len(flagged[-1]) if end_col is None else end_col - 1
    if not (0 <= s <= len(flagged[0]) and 0 <= e <= len(flagged[-1])) or (len(flagged) == 1 and e <= s):
        code = "".join(flagged)  # columns that do not fit: the whole lines
    elif len(flagged) == 1:
        code = flagged[0][s:e]
        sq = _squash(code)
        tiny = len(sq) < 3 or all(c.isalnum() or c == "_" or not c.isascii() for c in sq.decode("utf-8", "replace"))
        if code != flagged[0] and tiny:
            code = flagged[0]  # too small to identify anything: the whole line
    else:
        code = "".join((flagged[0][s:], *flagged[1:-1], flagged[-1][:e]))
    code_hash = _h(f.rule_id.encode("utf-8", "surrogatepass") + b"\0" + _squash(code), 8)

    def line_hash(i: int) -> str:
        sq = _squash(lines[i])
        return _h(sq, 4) if sq else ""

    def context(i: int, step: int) -> tuple[str, ...]:
        out: list[str] = []
        while 0 <= i < len(lines) and len(out) < 3:
            if line_hash(i):
                out.append(line_hash(i))
            i += step
        return tuple(out)

    def indent(i: int) -> int:
        rest = lines[i].lstrip()
        return len(lines[i]) - len(rest) if rest else -1

    before, after = context(start - 2, -1), context(end, 1)
    scope, ind = "", indent(start - 1)
    if ind > 0:
        j = start - 2
        while j >= 0 and not 0 <= indent(j) < ind:
            j -= 1
        scope = line_hash(j) if j >= 0 else ""
    value = _h("\0".join((f.rule_id, code_hash, *before, "|", *after)).encode("utf-8", "surrogatepass"), 16)
    return Fingerprint(value, code_hash, before, after, False, scope)


LINES = st.sampled_from([
    "", "   ", "\t", "x = eval(a)\r", "ab\r\r", "  assert x", "    assert y == 1", "é = 1", "\u3000y", "a", "if b:",
    "ｈ！", "def f():", "    return eval(x)", "\x1c\x1dz\x85", "\xa0 q\u2028r", "class C:", "        deep()",
    "\ufeffbom",
])


@st.composite
def files(draw: st.DrawFn) -> tuple[str, list[Finding]]:
    lines = draw(st.lists(LINES, min_size=1, max_size=40))
    n = len(lines)
    findings = []
    for _ in range(draw(st.integers(0, 3 * n))):
        start = draw(st.integers(1, n))
        end = draw(st.sampled_from([start, start, min(n, start + draw(st.integers(0, 3)))]))
        cols = draw(st.booleans())
        sc = draw(st.integers(1, 14)) if cols else None
        ec = draw(st.integers(1, 16)) if cols else None
        rule = draw(st.sampled_from(["r", "s", "règle"]))
        findings.append(Finding(rule, "t.py", start, end, "m", start_col=sc, end_col=ec))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"])), findings


@settings(max_examples=300, deadline=None)
@given(files())
def test_dense_and_sparse_fingerprints_follow_the_definition(case: tuple[str, list[Finding]]) -> None:
    text, findings = case
    done = fingerprint_findings(findings, lambda path: text)
    assert [f.rule_id for f in done] == [f.rule_id for f in findings]
    for before, after in zip(findings, done, strict=True):
        assert after.fingerprint == reference(before, text), before


@settings(max_examples=150, deadline=None)
@given(files())
def test_long_scope_walks_switch_to_every_lines_header_and_agree(case: tuple[str, list[Finding]]) -> None:
    text, findings = case
    walk, fpmod.SCOPE_WALK = fpmod.SCOPE_WALK, 1  # any walk past one line indexes every line's header
    try:
        done = fingerprint_findings(findings, lambda path: text)
    finally:
        fpmod.SCOPE_WALK = walk
    for before, after in zip(findings, done, strict=True):
        assert after.fingerprint == reference(before, text), before


@settings(max_examples=50, deadline=None)
@given(files(), files())
def test_several_files_keep_the_input_order(a: tuple[str, list[Finding]], b: tuple[str, list[Finding]]) -> None:
    texts = {"a.py": a[0], "b.py": b[0]}
    mixed = [Finding(f.rule_id, "a.py", f.start_line, f.end_line, "m", start_col=f.start_col, end_col=f.end_col)
             for f in a[1]]
    for k, f in enumerate(b[1]):
        mixed.insert(min(2 * k, len(mixed)), Finding(f.rule_id, "b.py", f.start_line, f.end_line, "m",
                                                       start_col=f.start_col, end_col=f.end_col))
    done = fingerprint_findings(mixed, texts.get)
    assert [(f.path, f.start_line) for f in done] == [(f.path, f.start_line) for f in mixed]
    for f, g in zip(mixed, done, strict=True):
        assert g.fingerprint == reference(f, texts[f.path])


def test_a_dense_file_of_a_hundred_thousand_lines_matches_the_definition_where_sampled() -> None:
    lines = [f"{'    ' * (i % 3)}v{i} = eval(x{i % 7})" if i % 5 else "" for i in range(100_000)]
    text = "\n".join(lines)
    findings = [Finding("r", "big.py", i + 1, i + 1, "m", start_col=len(ln) - 8, end_col=len(ln) + 1)
                for i, ln in enumerate(lines) if ln]
    done = fingerprint_findings(findings, lambda path: text)
    for k in range(0, len(findings), 997):
        assert done[k].fingerprint == reference(findings[k], text)

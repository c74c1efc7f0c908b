"""Fingerprints: what must keep a finding's identity, what must change it."""

from __future__ import annotations

import re
import time

import pytest

from forge_app.core.fingerprint import (
    K,
    fingerprint_fallback,
    fingerprint_findings,
    fingerprint_snippet,
    fingerprint_source,
)
from forge_app.core.models import Finding, ReportError

RULE = "python.lang.security.audit.eval-detected"

SOURCE = """\
import os


def handler(request):
    check(request)
    data = request.args
    result = eval(data)
    log(result)
    audit(result)
    return result


def other():
    pass
"""


def at(text: str, needle: str, *, rule: str = RULE, path: str = "app.py", occurrence: int = 0) -> Finding:
    """A finding on the `occurrence`-th match of `needle`, with Semgrep-style columns."""
    hits = [(n, m) for n, line in enumerate(text.split("\n"), 1) for m in re.finditer(re.escape(needle), line)]
    n, m = hits[occurrence]
    return Finding(rule, path, n, n, "eval", start_col=m.start() + 1, end_col=m.end() + 1,
                   snippet=text.split("\n")[n - 1])


def fp(text: str, needle: str = "eval(data)", **kw):
    return fingerprint_source(at(text, needle, **kw), text)


def test_shape_of_a_fingerprint() -> None:
    f = fp(SOURCE)
    assert re.fullmatch(r"[0-9a-f]{32}", f.value)
    assert re.fullmatch(r"[0-9a-f]{16}", f.code)
    assert len(f.before) == len(f.after) == K
    assert all(re.fullmatch(r"[0-9a-f]{8}", h) for h in f.before + f.after)


def test_context_is_the_nearest_non_blank_lines_nearest_first() -> None:
    f = fp(SOURCE)
    g = fp(SOURCE.replace("    data = request.args\n", "    data = request.args\n\n   \n"))
    assert f == g  # blank lines are skipped
    changed_far = fp(SOURCE.replace("def handler", "def handler2"))  # 3rd line above
    assert changed_far.before[:2] == f.before[:2] and changed_far.before[2] != f.before[2]
    assert fp(SOURCE.replace("import os", "import sys")) == f  # 4th: out of reach


def test_lines_inserted_or_removed_elsewhere_change_nothing() -> None:
    f = fp(SOURCE)
    assert fp("# header\n\n" + SOURCE + "\n\ndef more():\n    return 1\n") == f
    assert fp(SOURCE.replace("import os\n", "").replace("def other():\n    pass\n", "")) == f


def test_crlf_and_whitespace_inside_the_lines_change_nothing() -> None:
    f = fp(SOURCE)
    assert fp(SOURCE.replace("\n", "\r\n")) == f
    spaced = SOURCE.replace("result = eval(data)", "result=eval( data )").replace("log(result)", "log( result )")
    assert fp(spaced, "eval( data )") == f


def test_reindentation_changes_nothing() -> None:
    reindented = "\n".join(("    " + ln if ln.strip() else ln) for ln in SOURCE.split("\n"))
    assert fp(reindented) == fp(SOURCE)
    tabs = SOURCE.replace("    ", "\t")
    assert fp(tabs) == fp(SOURCE)


def test_the_flagged_code_is_the_match_columns_not_the_whole_line() -> None:
    a = fp(SOURCE)
    b = fp(SOURCE.replace("result = eval(data)", "value = eval(data)  # noqa"))
    assert a.code == b.code  # same flagged code, different rest of line


def test_changing_the_flagged_code_changes_the_code_hash() -> None:
    a = fp(SOURCE)
    b = fp(SOURCE.replace("eval(data)", "eval(data2)"), "eval(data2)")
    assert a.code != b.code and a.value != b.value
    assert a.before == b.before and a.after == b.after


def test_the_rule_is_part_of_the_identity() -> None:
    assert fp(SOURCE).code != fp(SOURCE, rule="other.rule").code


def test_editing_a_neighbour_keeps_the_code_and_most_of_the_context() -> None:
    a = fp(SOURCE)
    b = fp(SOURCE.replace("log(result)", "log.info(result)"))
    assert a.code == b.code and a.before == b.before
    assert a.after[0] != b.after[0] and a.after[1:] == b.after[1:]
    assert a.value != b.value  # the diff, not value equality, keeps the identity


def test_columns_that_do_not_fit_fall_back_to_whole_lines() -> None:
    text = "x = eval(a)\n"
    whole = Finding(RULE, "a.py", 1, 1, "m")
    too_far = Finding(RULE, "a.py", 1, 1, "m", start_col=5, end_col=80)
    empty = Finding(RULE, "a.py", 1, 1, "m", start_col=5, end_col=5)
    exact = Finding(RULE, "a.py", 1, 1, "m", start_col=1, end_col=12)
    codes = {fingerprint_source(f, text).code for f in (whole, too_far, empty, exact)}
    assert len(codes) == 1
    cut = Finding(RULE, "a.py", 1, 1, "m", start_col=5, end_col=12)
    assert fingerprint_source(cut, text).code == fingerprint_source(Finding(RULE, "a.py", 1, 1, "m"), "eval(a)").code


def test_multi_line_matches_use_the_columns_on_the_first_and_last_lines() -> None:
    text = "a = 1\nresult = eval(\n    data,\n) + 2\nb = 2\n"
    f = Finding(RULE, "a.py", 2, 4, "m", start_col=10, end_col=2)
    one_line = Finding(RULE, "a.py", 1, 1, "m")
    assert fingerprint_source(f, text).code == fingerprint_source(one_line, "eval(data,)").code
    # a match that ends at column 1 took the newline only: line 4 is context, not flagged
    g = Finding(RULE, "a.py", 2, 4, "m", start_col=10, end_col=1)
    assert fingerprint_source(g, text).code == fingerprint_source(one_line, "eval(data,").code
    assert fingerprint_source(g, text).after[1:] == fingerprint_source(f, text).after


def test_lines_outside_the_file_are_a_report_error() -> None:
    text = "a\nb\n"
    for start, end in ((4, 4), (0, 1), (2, 9)):
        with pytest.raises(ReportError, match=r"app\.py: line \d+ is outside the file"):
            fingerprint_source(Finding(RULE, "app.py", start, end, "m"), text)
    with pytest.raises(ValueError):
        fingerprint_source(Finding(RULE, "app.py", 5, 5, "m"), text)
    assert fingerprint_source(Finding(RULE, "app.py", 3, 3, "m"), text)  # the empty last line exists


def test_snippet_fingerprint_has_the_source_code_hash_and_no_context() -> None:
    finding = at(SOURCE, "eval(data)")
    from_snippet = fingerprint_snippet(finding)
    from_source = fingerprint_source(finding, SOURCE)
    assert from_snippet is not None
    assert from_snippet.code == from_source.code
    assert from_snippet.before == () and from_snippet.after == ()
    crlf = Finding(RULE, "a.py", 7, 7, "m", start_col=14, end_col=24, snippet="    result = eval(data)\r\n")
    assert fingerprint_snippet(crlf) == from_snippet


def test_multi_line_snippet_gives_the_source_code_hash() -> None:
    text = "a = 1\nresult = eval(\n    data,\n) + 2\nb = 2\n"
    snippet = "result = eval(\n    data,\n) + 2"
    f = Finding(RULE, "a.py", 2, 4, "m", start_col=10, end_col=2, snippet=snippet)
    assert fingerprint_snippet(f).code == fingerprint_source(f, text).code
    # the match took the newline: Semgrep may give the line it points into, or not
    g = Finding(RULE, "a.py", 2, 4, "m", start_col=10, end_col=1, snippet=snippet)
    h = Finding(RULE, "a.py", 2, 4, "m", start_col=10, end_col=1, snippet="result = eval(\n    data,")
    assert fingerprint_snippet(g).code == fingerprint_snippet(h).code == fingerprint_source(g, text).code


def test_snippet_that_is_exactly_the_match_gives_the_same_code() -> None:
    whole = at(SOURCE, "eval(data)")
    exact = Finding(RULE, "app.py", whole.start_line, whole.end_line, "m",
                    start_col=whole.start_col, end_col=whole.end_col, snippet="eval(data)")
    assert fingerprint_snippet(exact).code == fingerprint_snippet(whole).code


def test_no_snippet_no_snippet_fingerprint() -> None:
    assert fingerprint_snippet(Finding(RULE, "a.py", 1, 1, "m")) is None
    assert fingerprint_snippet(Finding(RULE, "a.py", 1, 1, "m", snippet="requires login")) is None


def test_fallback_ignores_lines_and_uses_tool_ids_and_message() -> None:
    a = Finding(RULE, "a.py", 3, 3, "m", tool_ids={"sarif.primaryLocationLineHash": "abc:1"})
    moved = Finding(RULE, "a.py", 30, 30, "m", tool_ids={"sarif.primaryLocationLineHash": "abc:1"})
    other = Finding(RULE, "a.py", 3, 3, "m", tool_ids={"sarif.primaryLocationLineHash": "def:1"})
    assert fingerprint_fallback(a) == fingerprint_fallback(moved)
    assert fingerprint_fallback(a) != fingerprint_fallback(other)
    assert fingerprint_fallback(a).code != fingerprint_fallback(Finding(RULE, "a.py", 3, 3, "other")).code


def test_fingerprint_findings_prefers_source_then_snippet_then_fallback() -> None:
    in_source = at(SOURCE, "eval(data)", path="src.py")
    snippet_only = Finding(RULE, "gone.py", 2, 2, "m", snippet="eval(x)")
    nothing = Finding(RULE, "gone.py", 4, 4, "m")
    reads: list[str] = []

    def read(path: str) -> str | None:
        reads.append(path)
        return SOURCE if path == "src.py" else None

    out = fingerprint_findings([in_source, snippet_only, nothing, in_source], read)
    assert sorted(reads) == ["gone.py", "src.py"]  # each path read once
    assert [f.path for f in out] == ["src.py", "gone.py", "gone.py", "src.py"]
    assert out[0].fingerprint == fingerprint_source(in_source, SOURCE) == out[3].fingerprint
    assert out[1].fingerprint == fingerprint_snippet(snippet_only)
    assert out[2].fingerprint == fingerprint_fallback(nothing)
    assert all(f.fingerprint is not None for f in out)


def test_fingerprint_findings_raises_for_a_line_beyond_the_file() -> None:
    bad = Finding(RULE, "src.py", 99, 99, "m", snippet="x")
    with pytest.raises(ReportError, match=r"src\.py: line 99"):
        fingerprint_findings([bad], lambda p: SOURCE)


def test_fifty_thousand_lines_and_five_hundred_findings_are_fast() -> None:
    lines = [f"    value_{i} = compute({i}, {i % 7})" for i in range(50_000)]
    findings = []
    for i in range(0, 50_000, 100):
        lines[i] = f"    result_{i} = eval(data_{i % 13})"
        col = lines[i].index("eval(") + 1
        findings.append(Finding(RULE, "big.py", i + 1, i + 1, "m", start_col=col, end_col=len(lines[i]) + 1))
    text = "\n".join(lines) + "\n"
    start = time.perf_counter()
    out = fingerprint_findings(findings, lambda p: text)
    elapsed = time.perf_counter() - start
    assert len(out) == 500 and len({f.fingerprint.value for f in out}) == 500
    assert elapsed < 1.0, f"{elapsed:.3f}s (target 0.5 s; bench/diff.py measures it)"

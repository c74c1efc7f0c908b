"""classify(): base vs head findings, unit cases (the generated ones are in test_diff_properties.py)."""

from __future__ import annotations

import random
import re
import time

from forge_app.core.diff import classify
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fingerprint

RULE = "python.lang.security.audit.eval-detected"
EVAL = re.compile(r"eval\([^)]*\)")


def scan(text: str, path: str = "app.py", rule: str = RULE) -> list[Finding]:
    """A fake scanner flagging every eval(...) call; findings fingerprinted from `text`."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in EVAL.finditer(line):
            out.append(Finding(rule, path, n, n, "eval", start_col=m.start() + 1, end_col=m.end() + 1, snippet=line))
    return fingerprint_findings(out, lambda p: text)


def lines(result) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    return (
        [f.start_line for f in result.new],
        [f.start_line for f in result.fixed],
        [(h.start_line, b.start_line) for h, b in result.unchanged],
    )


BASE = """\
def load(request):
    raw = request.body
    obj = eval(raw)
    return obj


def save(request):
    path = request.path
    obj = eval(raw)
    store(path, obj)
"""


def test_same_scan_is_all_unchanged() -> None:
    assert lines(classify(scan(BASE), scan(BASE))) == ([], [], [(3, 3), (9, 9)])


def test_a_copy_inserted_directly_above_the_original_is_one_new_and_the_lower_line() -> None:
    # The copy and the original have each other as context: which one is "the copy"
    # cannot be known; the lower one is reported, as `git diff` shows it added.
    once, twice = "    obj = eval(raw)\n    return obj", "    obj = eval(raw)\n    obj = eval(raw)\n    return obj"
    head = BASE.replace(once, twice)
    assert lines(classify(scan(BASE), scan(head))) == ([4], [], [(3, 3), (10, 9)])


def test_a_copy_in_a_run_of_copies_is_reported_last_and_a_removed_one_is_fixed_last() -> None:
    base = "def f():\n    a = 1\n    eval(x)\n    eval(x)\n    b = 2\n"
    three = base.replace("    eval(x)\n", "    eval(x)\n", 1).replace("    b = 2", "    eval(x)\n    b = 2")
    assert lines(classify(scan(base), scan(three))) == ([5], [], [(3, 3), (4, 4)])
    assert lines(classify(scan(three), scan(base))) == ([], [5], [(3, 3), (4, 4)])


def test_a_copy_among_other_lines_is_the_new_one() -> None:
    head = BASE.replace("    store(path, obj)", "    store(path, obj)\n    again = eval(raw)\n    done()")
    assert lines(classify(scan(BASE), scan(head))) == ([11], [], [(3, 3), (9, 9)])
    above = "def first():\n    x = 1\n    eval(raw)\n    y = 2\n\n" + BASE
    assert lines(classify(scan(BASE), scan(above))) == ([3], [], [(8, 3), (14, 9)])


def test_deleting_one_of_two_identical_findings_fixes_that_one() -> None:
    head = BASE.replace("    path = request.path\n    obj = eval(raw)\n", "    path = request.path\n")
    assert lines(classify(scan(BASE), scan(head))) == ([], [9], [(3, 3)])
    head = BASE.replace("    raw = request.body\n    obj = eval(raw)\n", "    raw = request.body\n")
    assert lines(classify(scan(BASE), scan(head))) == ([], [3], [(8, 9)])


def test_moving_a_function_and_editing_its_neighbours_keeps_the_identity() -> None:
    moved = BASE.replace("    raw = request.body", "    raw = request.body.decode()")
    parts = moved.split("\n\n\n")
    head = parts[1] + "\n\n\n" + parts[0] + "\n"
    assert lines(classify(scan(BASE), scan(head))) == ([], [], [(3, 9), (10, 3)])


def test_changing_the_flagged_code_is_new_plus_fixed() -> None:
    head = BASE.replace("    obj = eval(raw)\n    return obj", "    obj = eval(raw2)\n    return obj")
    assert lines(classify(scan(BASE), scan(head))) == ([3], [3], [(9, 9)])


def test_rule_and_path_must_match() -> None:
    assert lines(classify(scan(BASE, rule="a"), scan(BASE, rule="b"))) == ([3, 9], [3, 9], [])
    assert lines(classify(scan(BASE, path="a.py"), scan(BASE, path="b.py"))) == ([3, 9], [3, 9], [])


def test_renames_map_base_paths_to_head_paths() -> None:
    result = classify(scan(BASE, path="old.py"), scan(BASE, path="new.py"), renames={"old.py": "new.py"})
    assert lines(result) == ([], [], [(3, 3), (9, 9)])
    assert {(h.path, b.path) for h, b in result.unchanged} == {("new.py", "old.py")}


def test_findings_without_fingerprint_match_on_their_location_key() -> None:
    a = Finding(RULE, "a.py", 3, 3, "m")
    assert lines(classify([a], [Finding(RULE, "a.py", 3, 3, "other message")])) == ([], [], [(3, 3)])
    assert lines(classify([a], [Finding(RULE, "a.py", 4, 4, "m")])) == ([4], [3], [])


def test_fallback_fingerprints_match_by_key_whatever_the_line() -> None:
    def fb(line: int, msg: str) -> Finding:
        return fingerprint_findings([Finding(RULE, "a.py", line, line, msg)], lambda p: None)[0]

    base = [fb(3, "one"), fb(9, "two")]
    head = [fb(5, "one"), fb(11, "two"), fb(20, "three")]
    assert lines(classify(base, head)) == ([20], [], [(5, 3), (11, 9)])


def test_snippet_fingerprints_group_with_source_fingerprints() -> None:
    from_source = scan(BASE)
    from_snippet = fingerprint_findings([f.with_fingerprint(None) for f in from_source], lambda p: None)
    assert all(f.fingerprint.before == () for f in from_snippet)
    shifted = fingerprint_findings([Finding(f.rule_id, f.path, f.start_line + 5, f.end_line + 5, f.message,
                                            start_col=f.start_col, end_col=f.end_col, snippet=f.snippet)
                                    for f in from_source], lambda p: None)
    assert lines(classify(from_source, shifted)) == ([], [], [(8, 3), (14, 9)])


def test_output_is_sorted_and_independent_of_input_order() -> None:
    files = {f"m{i}.py": BASE.replace("raw", f"raw{i % 3}") for i in range(6)}
    base = [f for p, t in files.items() for f in scan(t, p)]
    head = [f for p, t in files.items() for f in scan("# top\n" + t, p)]
    a = classify(base, head)
    shuffled_b, shuffled_h = list(base), list(head)
    random.Random(7).shuffle(shuffled_b)
    random.Random(8).shuffle(shuffled_h)
    assert classify(shuffled_b, shuffled_h) == a
    keys = [(h.path, h.start_line) for h, _ in a.unchanged]
    assert keys == sorted(keys) and len(keys) == len(head)


def test_huge_groups_of_identical_code_stay_correct_and_fast() -> None:
    body = "".join(f"    step{i}()\n    eval(x)\n" for i in range(3000))
    base = "def f():\n" + body
    head = "def f():\n    fresh()\n    eval(x)\n    other()\n" + body  # one copy with new context, on top
    b, h = scan(base), scan(head)
    start = time.perf_counter()
    result = classify(b, h)
    elapsed = time.perf_counter() - start
    assert [f.start_line for f in result.new] == [3]
    assert not result.fixed
    assert all(hh.start_line == bb.start_line + 3 for hh, bb in result.unchanged)
    assert elapsed < 2.0, elapsed


def test_huge_groups_with_only_identical_context_still_pair_everything() -> None:
    base = "def f():\n" + "    eval(x)\n" * 400
    head = "def f():\n" + "    eval(x)\n" * 401
    result = classify(scan(base), scan(head))
    assert len(result.new) == 1 and not result.fixed and len(result.unchanged) == 400


def test_ten_thousand_findings_a_side_classify_fast() -> None:
    def fake(i: int, shift: int) -> Finding:
        code = f"{i % 40:016x}"
        ctx = tuple(f"{(i * 7 + k) % 5000:08x}" for k in range(3))
        return Finding(RULE, f"f{i % 200}.py", i // 200 * 10 + shift + 1, i // 200 * 10 + shift + 1, "m",
                       fingerprint=Fingerprint(value=f"{i:032x}", code=code, before=ctx, after=ctx[::-1]))

    base = [fake(i, 0) for i in range(10_000)]
    head = [fake(i, 3) for i in range(100, 10_100)]
    start = time.perf_counter()
    result = classify(base, head)
    elapsed = time.perf_counter() - start
    assert len(result.unchanged) + len(result.new) == 10_000
    assert elapsed < 1.0, elapsed


def test_findings_without_code_match_the_same_rule_and_path_by_place():
    """A baseline fingerprinted from the checkout and a PR report with neither source nor snippet
    ("requires login") must not turn every finding into one fixed and one new."""
    from forge_app.core.fingerprint import fingerprint_fallback, fingerprint_source

    text = "import os\n\ndef f(x):\n    return eval(x)\n\ndef g(y):\n    return exec(y)\n"
    base = [Finding("r.eval", "a.py", 4, 4, "eval"), Finding("r.exec", "a.py", 7, 7, "exec")]
    base = [f.with_fingerprint(fingerprint_source(f, text)) for f in base]
    head = [Finding("r.eval", "a.py", 6, 6, "eval"), Finding("r.exec", "a.py", 9, 9, "exec"),
            Finding("r.exec", "b.py", 1, 1, "exec")]
    head = [f.with_fingerprint(fingerprint_fallback(f)) for f in head]
    assert head[0].fingerprint.fallback and not base[0].fingerprint.fallback
    result = classify(base, head)
    unchanged = [(h.rule_id, h.start_line, b.start_line) for h, b in result.unchanged]
    assert unchanged == [("r.eval", 6, 4), ("r.exec", 9, 7)]
    assert [(f.path, f.rule_id) for f in result.new] == [("b.py", "r.exec")] and result.fixed == []


def test_code_fingerprints_on_both_sides_never_pair_by_place():
    from forge_app.core.fingerprint import fingerprint_source

    base_text, head_text = "x = eval(a)\n", "x = eval(b)\n"
    base = [Finding("r.eval", "a.py", 1, 1, "eval")]
    head = [Finding("r.eval", "a.py", 1, 1, "eval")]
    base = [f.with_fingerprint(fingerprint_source(f, base_text)) for f in base]
    head = [f.with_fingerprint(fingerprint_source(f, head_text)) for f in head]
    result = classify(base, head)
    assert len(result.new) == 1 and len(result.fixed) == 1 and result.unchanged == []

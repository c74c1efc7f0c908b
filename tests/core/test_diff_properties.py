"""Properties of fingerprint + classify over generated Python-like files.

A fake scanner flags every `eval(...)` call, so findings come from the file content the
way a real scanner's would. Each generated line carries a hidden id, which tells the
test which base line a head finding really is; classify must find the same answer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forge_app.core.diff import DiffResult, classify
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding

RULE = "python.lang.security.audit.eval-detected"
PATH = "app/mod.py"
FLAGGED = ("x = eval(a)", "eval(a)", "y = eval(b)", "return eval(request.args)")
COMMON = ("pass", "log.debug('here')", "a = b")  # lines many functions share
EVAL = re.compile(r"eval\([^)]*\)")

# FP_EXAMPLES=3000 for a deeper search; 100 keeps the suite fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("FP_EXAMPLES", 100)), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Line:
    text: str
    uid: int  # which "statement" this is; -1 for lines that carry no identity


def scan(text: str, path: str = PATH) -> list[Finding]:
    """The fake scanner: one finding per eval(...) call, with Semgrep-style columns."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in EVAL.finditer(line):
            out.append(
                Finding(
                    RULE, path, n, n, "eval is dangerous", start_col=m.start() + 1, end_col=m.end() + 1, snippet=line
                )
            )
    return out


def render(lines: list[Line], newline: str = "\n") -> str:
    return newline.join(ln.text for ln in lines) + newline


def fingerprinted(lines: list[Line], newline: str = "\n") -> list[Finding]:
    text = render(lines, newline)
    return fingerprint_findings(scan(text), lambda p: text)


def flagged_uids(lines: list[Line]) -> dict[int, int]:
    """Line number -> uid of every flagged line."""
    return {n: ln.uid for n, ln in enumerate(lines, 1) if EVAL.search(ln.text)}


def diff(base: list[Line], head: list[Line], newline: str = "\n") -> DiffResult:
    return classify(fingerprinted(base), fingerprinted(head, newline))


def assert_identity_kept(
    base: list[Line], head: list[Line], result: DiffResult, *, new_uids=(), fixed_uids=(), only=None
) -> None:
    """Every head finding whose uid was in base is unchanged with that uid's base line
    (for the uids in `only`, when given), and exactly the given uids are new / fixed."""
    base_line = {uid: n for n, uid in flagged_uids(base).items()}
    head_uid = flagged_uids(head)
    got_pairs = {
        (h.start_line, b.start_line) for h, b in result.unchanged if only is None or head_uid[h.start_line] in only
    }
    want_pairs = {
        (n, base_line[uid])
        for n, uid in head_uid.items()
        if uid in base_line and uid not in new_uids and (only is None or uid in only)
    }
    assert got_pairs == want_pairs
    assert sorted(head_uid[f.start_line] for f in result.new) == sorted(new_uids)
    base_uid = flagged_uids(base)
    assert sorted(base_uid[f.start_line] for f in result.fixed) == sorted(fixed_uids)


# ---- generating files ---------------------------------------------------------------


@st.composite
def programs(draw, min_body: int = 1) -> list[list[Line]]:
    """Functions (lists of lines, the def first) with mostly unique filler statements
    and flagged lines from a small pool, so identical flagged code in several places is
    common. Two flagged lines are never adjacent: copies with identical context are a
    separate, documented case (see test_diff.py)."""
    uid = iter(range(1, 1_000_000))
    funcs = []
    for fi in range(draw(st.integers(2, 6))):
        body: list[Line] = []
        prev_flagged = False
        for _ in range(draw(st.integers(min_body, 8))):
            kind = draw(st.integers(0, 5))
            if not prev_flagged and kind <= 1:
                body.append(Line("    " + draw(st.sampled_from(FLAGGED)), next(uid)))
                prev_flagged = True
            elif kind == 2:
                body.append(Line("    " + draw(st.sampled_from(COMMON)), next(uid)))
                prev_flagged = False
            else:
                n = next(uid)
                body.append(Line(f"    v{n} = compute({n})", n))
                prev_flagged = False
        funcs.append([Line(f"def f{fi}(a, b, request):", next(uid)), *body])
    return funcs


def join(funcs: list[list[Line]]) -> list[Line]:
    out: list[Line] = []
    for f in funcs:
        out.extend(f)
        out.append(Line("", -1))
    return out


def distinctive(base: list[Line], head: list[Line]) -> set[int]:
    """Uids of flagged lines whose nearest non-blank neighbours, above and below, are
    the same lines in base and head and occur once in the file: places a reader
    would recognise too."""
    def neighbours(lines: list[Line]) -> dict[int, tuple[str, str]]:
        texts = [ln.text.strip() for ln in lines]
        counts: dict[str, int] = {}
        for t in texts:
            counts[t] = counts.get(t, 0) + 1
        out = {}
        for i in flagged_positions(lines):
            up = next((texts[j] for j in range(i - 1, -1, -1) if texts[j]), "")
            down = next((texts[j] for j in range(i + 1, len(texts)) if texts[j]), "")
            if counts.get(up, 0) == 1 and counts.get(down, 0) == 1:
                out[lines[i].uid] = (up, down)
        return out

    b, h = neighbours(base), neighbours(head)
    return {uid for uid, nb in h.items() if b.get(uid) == nb}


def flagged_code(text: str) -> str | None:
    m = EVAL.search(text)
    return m.group().replace(" ", "") if m else None


def flagged_positions(lines: list[Line]) -> list[int]:
    return [i for i, ln in enumerate(lines) if EVAL.search(ln.text)]


_extra = iter(range(10**7, 10**8))


def filler(indent: str = "    ") -> Line:
    n = next(_extra)
    return Line(f"{indent}w{n} = other({n})", n)


# ---- properties -----------------------------------------------------------------------


@SETTINGS
@given(programs(), st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), min_size=1, max_size=8))
def test_inserting_lines_anywhere_keeps_every_finding(funcs, inserts) -> None:
    base = join(funcs)
    head = list(base)
    for pos, blank in inserts:
        head.insert(pos % (len(head) + 1), Line("", -1) if blank else filler())
    assert_identity_kept(base, head, diff(base, head))


@SETTINGS
@given(programs(), st.randoms(use_true_random=False))
def test_permuting_functions_keeps_every_finding(funcs, rnd) -> None:
    base = join(funcs)
    shuffled = list(funcs)
    rnd.shuffle(shuffled)
    head = join(shuffled)
    result = diff(base, head)
    assert not result.new and not result.fixed
    # Which base line each one came from is right whenever its function is
    # recognisable; swapped look-alike functions may swap (docs/fingerprints.md).
    assert_identity_kept(base, head, result, only=distinctive(base, head))


@SETTINGS
@given(programs(), st.data())
def test_wrapping_a_block_in_if_true_keeps_every_finding(funcs, data) -> None:
    base = join(funcs)
    fi = data.draw(st.integers(0, len(funcs) - 1))
    body = funcs[fi][1:]
    lo = data.draw(st.integers(0, len(body) - 1))
    hi = data.draw(st.integers(lo + 1, len(body)))
    inner = [Line("    " + ln.text, ln.uid) for ln in body[lo:hi]]
    wrapped = [*body[:lo], Line("    if True:", -1), *inner, *body[hi:]]
    head = join([*funcs[:fi], [funcs[fi][0], *wrapped], *funcs[fi + 1 :]])
    assert_identity_kept(base, head, diff(base, head))


@SETTINGS
@given(programs(), st.data())
def test_moving_functions_into_a_class_keeps_every_finding(funcs, data) -> None:
    base = join(funcs)
    k = data.draw(st.integers(1, len(funcs)))
    methods = [Line("    " + ln.text, ln.uid) for f in funcs[:k] for ln in f]
    head = join([[Line("class Service:", -1), *methods], *funcs[k:]])
    assert_identity_kept(base, head, diff(base, head))


@SETTINGS
@given(programs())
def test_crlf_and_lf_give_the_same_fingerprints(funcs) -> None:
    base = join(funcs)
    lf, crlf = fingerprinted(base), fingerprinted(base, "\r\n")
    assert [f.fingerprint for f in lf] == [f.fingerprint for f in crlf]
    assert_identity_kept(base, base, diff(base, base, "\r\n"))


@SETTINGS
@given(programs(), st.data())
def test_whitespace_inside_flagged_lines_keeps_every_finding(funcs, data) -> None:
    base = join(funcs)
    spaced = {
        "x = eval(a)": "x=eval( a )",
        "eval(a)": "eval(a )  ",
        "y = eval(b)": "y =\teval(b )",
        "return eval(request.args)": "return  eval( request.args )",
    }
    picks = data.draw(st.sets(st.sampled_from(flagged_positions(base)))) if flagged_positions(base) else set()
    head = [Line("  " + spaced[ln.text.strip()], ln.uid) if i in picks else ln for i, ln in enumerate(base)]
    assert_identity_kept(base, head, diff(base, head))


@SETTINGS
@given(programs(), st.data())
def test_editing_the_line_right_before_or_after_keeps_every_finding(funcs, data) -> None:
    base = join(funcs)
    positions = flagged_positions(base)
    assume(positions)
    at = data.draw(st.sampled_from(positions))
    head = list(base)
    for j in (at - 1, at + 1):
        if 0 <= j < len(head) and not EVAL.search(head[j].text) and data.draw(st.booleans()):
            head[j] = filler()
    assert_identity_kept(base, head, diff(base, head))


@SETTINGS
@given(programs(), st.data())
def test_a_copy_placed_in_another_function_is_the_one_new_finding(funcs, data) -> None:
    src = data.draw(st.sampled_from(range(len(funcs))))
    flagged = [ln for ln in funcs[src] if EVAL.search(ln.text)]
    assume(flagged)
    original = data.draw(st.sampled_from(flagged))
    dst = data.draw(st.sampled_from([i for i in range(len(funcs)) if i != src]))
    # Not within K lines of identical code: there the copy and that line would share
    # their context, and which one is "the copy" would be a guess (a unit test covers it).
    body = funcs[dst]
    code = flagged_code(original.text)
    slots = [
        k for k in range(1, len(body) + 1) if all(flagged_code(ln.text) != code for ln in body[max(0, k - 3) : k + 3])
    ]
    assume(slots)
    k = data.draw(st.sampled_from(slots))
    copy = Line(original.text, 10**9)
    head_funcs = [list(f) for f in funcs]
    head_funcs[dst].insert(k, copy)
    base, head = join(funcs), join(head_funcs)
    result = diff(base, head)
    assert_identity_kept(base, head, result, new_uids=[copy.uid])


@SETTINGS
@given(programs(), st.data())
def test_deleting_one_of_two_identical_lines_fixes_that_one(funcs, data) -> None:
    base = join(funcs)
    by_text: dict[str, list[int]] = {}
    for i in flagged_positions(base):
        by_text.setdefault(base[i].text.strip(), []).append(i)
    twins = [v for v in by_text.values() if len(v) >= 2]
    assume(twins)
    gone = data.draw(st.sampled_from(data.draw(st.sampled_from(twins))))
    head = base[:gone] + base[gone + 1 :]
    assert_identity_kept(base, head, diff(base, head), fixed_uids=[base[gone].uid])


@SETTINGS
@given(programs(), st.data())
def test_changing_the_flagged_code_is_one_new_and_one_fixed(funcs, data) -> None:
    base = join(funcs)
    positions = flagged_positions(base)
    assume(positions)
    at = data.draw(st.sampled_from(positions))
    head = list(base)
    head[at] = Line("    x = eval(untrusted_input)", 10**9)
    assert_identity_kept(base, head, diff(base, head), new_uids=[10**9], fixed_uids=[base[at].uid])


@SETTINGS
@given(programs(), st.randoms(use_true_random=False))
def test_classify_ignores_input_order_and_counts_add_up(funcs, rnd) -> None:
    base = fingerprinted(join(funcs))
    head = fingerprinted(join(list(reversed(funcs))))
    shuffled_b, shuffled_h = list(base), list(head)
    rnd.shuffle(shuffled_b)
    rnd.shuffle(shuffled_h)
    a, b = classify(base, head), classify(shuffled_b, shuffled_h)
    assert a == b
    assert len(a.new) + len(a.unchanged) == len(head)
    assert len(a.fixed) + len(a.unchanged) == len(base)


@SETTINGS
@given(programs(), st.randoms(use_true_random=False), st.lists(st.integers(0, 10**6), max_size=5))
def test_snippet_only_fingerprints_still_never_report_moved_code(funcs, rnd, inserts) -> None:
    """No checkout (the server's case): no context, but the code groups still hold."""
    shuffled = list(funcs)
    rnd.shuffle(shuffled)
    base, head = join(funcs), join(shuffled)
    for pos in inserts:
        head.insert(pos % (len(head) + 1), filler())
    no_source = lambda path: None  # noqa: E731
    result = classify(
        fingerprint_findings(scan(render(base)), no_source), fingerprint_findings(scan(render(head)), no_source)
    )
    assert not result.new and not result.fixed
    assert len(result.unchanged) == len(flagged_positions(base))

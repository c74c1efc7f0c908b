"""Where context ties, the enclosing scope (nearest less-indented line above) decides."""

from __future__ import annotations

from forge_app.core import fingerprint as fpmod
from forge_app.core.diff import classify
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding

BODY = "    a = 1\n    b = 2\n    c = 3\n    d = 4\n    x = eval(a)\n    return x\n"


def scan(text: str) -> list[Finding]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        col = line.find("eval(")
        if col >= 0:
            out.append(Finding("eval", "m.py", n, n, "m", start_col=col + 1, end_col=col + 8))
    return fingerprint_findings(out, lambda p: text)


def pairs(base: str, head: str) -> set[tuple[int, int]]:
    r = classify(scan(base), scan(head))
    assert not r.new and not r.fixed
    return {(h.start_line, b.start_line) for h, b in r.unchanged}


def test_swapped_functions_that_differ_only_by_name_keep_their_findings():
    one, two = "def load():\n" + BODY, "def save():\n" + BODY
    base, head = one + "\n\n" + two, two + "\n\n" + one
    # in base, load's eval is line 6 and save's line 15; in head, save's is 6 and load's 15
    assert pairs(base, head) == {(6, 15), (15, 6)}


def test_one_line_look_alikes_swapped():
    base = "def a():\n    return eval(x)\n\n\ndef b():\n    return eval(x)\n"
    head = "def b():\n    return eval(x)\n\n\ndef a():\n    return eval(x)\n"
    assert pairs(base, head) == {(2, 6), (6, 2)}


def test_scope_is_the_nearest_less_indented_line_and_lookups_stay_linear():
    text = "class C:\n    def f(self):\n\n        x = 1\n        if x:\n            y = 2\n        z = 3\n"
    src = fpmod._Source("m.py", text)
    h = src._line_hash
    assert [src.scope(i) for i in range(7)] == ["", h(0), "", h(1), h(1), h(4), h(1)]
    big = "def f():\n" + "    x = 1\n" * 20_000
    src = fpmod._Source("m.py", big)
    assert src.scope(19_000) == src._line_hash(0) and src.scope(100) == src._line_hash(0)

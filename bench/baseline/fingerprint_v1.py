# fingerprint.py as it was before the dense-file rewrite (issue #13, second pass; main a97364c), timed by
# bench/diff.py beside today's code in the same run. It computes the same fingerprints, more slowly.
# ruff: noqa: SIM108
"""Line-move-tolerant finding identities (the algorithm and its reasons: docs/fingerprints.md).

A fingerprint has two parts that do different jobs:

* `code`: a hash of the rule and the flagged code with all whitespace removed. It
  groups candidates: a head finding can only ever be the same as a base finding
  with the same rule, path and `code`.
* `before` / `after`: short hashes of the K nearest non-blank lines around the
  flagged code. They tell identical flagged code in different places apart, and the
  diff (`forge_app.core.diff`) scores them by overlap, so one edited neighbour costs a
  little similarity instead of the identity.

No I/O here: callers pass file contents, or a `read_source` callable.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from bench.baseline.models_v1 import Finding, Fingerprint, Fix, ReportError

K = 3
"""How many non-blank lines of context on each side."""

_SEP = "\x00"
_NO_SNIPPET = {"", "requires login"}  # Semgrep writes "requires login" when it withholds code


# What str.split() calls whitespace, in ASCII: removing these bytes from an ASCII line
# is the same as "".join(line.split()), several times faster.
_ASCII_WS = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_ASCII_WS_KEEP_LF = _ASCII_WS.replace(b"\n", b"")


def _squash(s: str) -> bytes:
    """The text with all whitespace removed (indentation, CR, tabs, spaces inside the
    line, line breaks), as UTF-8."""
    if s.isascii():
        return s.encode("ascii").translate(None, _ASCII_WS)
    return "".join(s.split()).encode("utf-8", "surrogatepass")


_blake2b = hashlib.blake2b


def _code_hash(rule_id: str, code: str) -> str:
    return _blake2b(rule_id.encode("utf-8", "surrogatepass") + b"\0" + _squash(code), digest_size=8).hexdigest()


def _value(rule_id: str, code: str, before: Sequence[str], after: Sequence[str]) -> str:
    data = _SEP.join((rule_id, code, *before, "|", *after)).encode("utf-8", "surrogatepass")
    return _blake2b(data, digest_size=16).hexdigest()


def _make(rule_id: str, flagged: str, before: tuple[str, ...], after: tuple[str, ...]) -> Fingerprint:
    code = _code_hash(rule_id, flagged)
    return Fingerprint(value=_value(rule_id, code, before, after), code=code, before=before, after=after)


def _span(f: Finding) -> tuple[int, int, int | None, int | None]:
    """(start_line, end_line, start_col, end_col) of the code the finding flags.

    A match that ends at column 1 took the previous line's newline and nothing of
    its last line: it ends on the line before. A reversed line range is read as one line.
    """
    end = max(f.start_line, f.end_line)
    end_col = f.end_col if end == f.end_line else None
    if end > f.start_line and end_col == 1:
        end, end_col = end - 1, None
    return f.start_line, end, f.start_col, end_col


def _cut(lines: Sequence[str], start_col: int | None, end_col: int | None) -> str:
    """The flagged code: the match columns when they fit the lines, else the whole lines.

    Columns are 1-based and end_col is exclusive (Semgrep, SARIF); a missing column
    means the line's start or end. Whole lines are the safe answer for columns we
    cannot trust, so source and snippet agree whatever the tool wrote.
    """
    if not lines:
        return ""
    first, last = lines[0], lines[-1]
    s = 0 if start_col is None else start_col - 1
    e = len(last) if end_col is None else end_col - 1
    if not (0 <= s <= len(first) and 0 <= e <= len(last)) or (len(lines) == 1 and e <= s):
        return "".join(lines)
    if len(lines) == 1:
        return first[s:e]
    return "".join((first[s:], *lines[1:-1], last[:e]))


_WORD = re.compile(rb"[\w\x80-\xff]+")  # one name or keyword (non-ASCII letters included)
MIN_CODE = 3
"""A flagged region shorter than this (whitespace removed) cannot tell code apart."""


def _too_small(sq: bytes) -> bool:
    if len(sq) < MIN_CODE:
        return True
    if not sq.isalnum() and b"_" not in sq and sq.isascii():
        return False  # has punctuation: more than a name (the common case, without the regex)
    return _WORD.fullmatch(sq) is not None


def _flagged(lines: Sequence[str], start_col: int | None, end_col: int | None) -> str:
    """The code that identifies a finding: the match, widened to its whole line(s) when the
    match is too small to identify anything (one character, a keyword or name alone: ruff's
    S101 flags just `assert`, RUF001 one character). The reported region is kept for display."""
    cut = _cut(lines, start_col, end_col)
    if len(lines) == 1 and cut != lines[0] and _too_small(_squash(cut)):
        return lines[0]
    return cut


SCOPE_WALK = 256
"""Lines a scope lookup walks up before computing every line's scope at once."""

DENSE = 16
"""A file with more than one finding per this many lines gets all its line hashes at once."""


class _Source:
    """One file's lines, split once, with whitespace-free line hashes.

    Lazy for sparse files (a 50,000-line file with a few findings needs a few dozen
    hashes); in bulk for dense ones, where the whole file is squashed in one call and
    each finding's context is two slices of the non-blank lines' hashes.
    """

    __slots__ = ("_hashes", "_indents", "_nb", "_nbh", "_parents", "_squashed", "lines", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        # Split on LF only, like the scanners count lines; a CR before it is whitespace.
        self.lines = text.split("\n")
        self._hashes: list[str | None] = [None] * len(self.lines)  # "" marks a blank line
        self._squashed: list[bytes] | None = None
        self._nb: list[int] | None = None  # indexes of non-blank lines (dense mode)
        self._nbh: list[str] = []  # their hashes
        self._indents: dict[int, int] = {}  # line index -> indentation (-1: blank)
        self._parents: dict[int, int] = {}  # line index -> its scope's header line index (-1: none)

    def densify(self) -> None:
        """Every line's hash at once: squash the whole text in one call, hash each line."""
        if self._nb is not None:
            return
        if self.text.isascii():
            sq = self.text.encode("ascii").translate(None, _ASCII_WS_KEEP_LF).split(b"\n")
        else:
            sq = [_squash(ln) for ln in self.lines]
        b2 = _blake2b
        hashes = [b2(x, digest_size=4).hexdigest() if x else "" for x in sq]
        self._squashed, self._hashes = sq, hashes  # type: ignore[assignment]
        self._nb = [i for i, h in enumerate(hashes) if h]
        self._nbh = [hashes[i] for i in self._nb]
        self._all_parents()  # every finding will ask for its scope

    def _indent(self, i: int) -> int:
        ind = self._indents.get(i)
        if ind is None:
            line = self.lines[i]
            rest = line.lstrip()
            ind = self._indents[i] = len(line) - len(rest) if rest else -1
        return ind

    def _line_hash(self, i: int) -> str:
        h = self._hashes[i]
        if h is None:
            sq = _squash(self.lines[i])
            h = self._hashes[i] = _blake2b(sq, digest_size=4).hexdigest() if sq else ""
        return h

    def scope(self, i: int) -> str:
        """Hash of the enclosing scope's header: the nearest non-blank line above index `i` that
        is less indented (a `def`, `class`, `fn` line...); "" at top level. A short walk up,
        jumping over lines whose header is already known (a line no less indented than ours
        has our header or one nested in it); a long walk (a huge block) computes every line's
        header at once instead, so any file costs linear time."""
        parents = self._parents
        known = parents.get(i)
        if known is not None:
            return self._line_hash(known) if known >= 0 else ""
        ind = self._indent(i)
        if ind <= 0:
            return ""
        j, steps = i - 1, 0
        while j >= 0:
            dj = self._indent(j)
            if 0 <= dj < ind:
                break
            p = parents.get(j) if dj >= 0 else None
            j = p if p is not None else j - 1
            steps += 1
            if steps > SCOPE_WALK:
                self._all_parents()
                j = parents[i]
                break
        parents[i] = j
        return self._line_hash(j) if j >= 0 else ""

    def _all_parents(self) -> None:
        """Every line's header (previous less-indented non-blank line) with one stack pass."""
        parents, stack = self._parents, []  # (indent, index), strictly increasing indents
        indents = [len(ln) - len(ln.lstrip()) if ln and not ln.isspace() else -1 for ln in self.lines]
        for k, dk in enumerate(indents):
            if dk < 0:
                continue
            while stack and stack[-1][0] >= dk:
                stack.pop()
            parents[k] = stack[-1][1] if stack else -1
            stack.append((dk, k))

    def context(self, i: int, step: int) -> tuple[str, ...]:
        """Hashes of the K nearest non-blank lines from index `i` going by `step`, nearest first."""
        nb = self._nb
        if nb is not None:
            if step < 0:
                j = bisect.bisect_right(nb, i)
                return tuple(self._nbh[max(0, j - K):j][::-1])
            j = bisect.bisect_left(nb, i)
            return tuple(self._nbh[j:j + K])
        lines, cache, n = self.lines, self._hashes, len(self.lines)
        out: list[str] = []
        while 0 <= i < n:
            h = cache[i]
            if h is None:  # the hot loop: _squash inlined for ASCII lines
                line = lines[i]
                sq = line.encode("ascii").translate(None, _ASCII_WS) if line.isascii() else _squash(line)
                h = cache[i] = _blake2b(sq, digest_size=4).hexdigest() if sq else ""
            if h:
                out.append(h)
                if len(out) == K:
                    break
            i += step
        return tuple(out)

    def fingerprint(self, f: Finding) -> Fingerprint:
        n = len(self.lines)
        start_line, end_line = f.start_line, f.end_line
        if not (1 <= start_line <= n and 1 <= end_line <= n):
            line = start_line if not 1 <= start_line <= n else end_line
            raise ReportError(f"{self.path}: line {line} is outside the file (it has {n} lines)")
        sq = self._squashed
        if sq is not None and start_line == end_line:  # the dense, one-line case, inlined
            line = self.lines[start_line - 1].rstrip("\r")
            s = 0 if f.start_col is None else f.start_col - 1
            e = len(line) if f.end_col is None else f.end_col - 1
            if 0 <= s < e <= len(line) and (s or e < len(line)):  # as _cut and _flagged decide
                cut = line[s:e]
                code = cut.encode("ascii").translate(None, _ASCII_WS) if cut.isascii() else _squash(cut)
                if _too_small(code):
                    code = sq[start_line - 1]
            else:
                code = sq[start_line - 1]
            rule = f.rule_id
            ch = _blake2b(rule.encode("utf-8", "surrogatepass") + b"\0" + code, digest_size=8).hexdigest()
            j = bisect.bisect_right(self._nb, start_line - 2)  # type: ignore[arg-type]
            nbh = self._nbh
            before = tuple(nbh[max(0, j - K):j][::-1])
            k = j + (self._hashes[start_line - 1] != "")
            after = tuple(nbh[k:k + K])
            return Fingerprint(_value(rule, ch, before, after), ch, before, after, False, self.scope(start_line - 1))
        start, end, start_col, end_col = _span(f)
        flagged = _flagged([ln.rstrip("\r") for ln in self.lines[start - 1 : end]], start_col, end_col)
        fp = _make(f.rule_id, flagged, self.context(start - 2, -1), self.context(end, 1))
        return Fingerprint(fp.value, fp.code, fp.before, fp.after, False, self.scope(start - 1))


def fingerprint_source(finding: Finding, text: str) -> Fingerprint:
    """Fingerprint from the whole file content (any newline style).

    Raises ReportError (a ValueError) when the finding's lines are not in the file:
    the report and the checkout disagree, and guessing would give a wrong identity.
    """
    return _Source(finding.path, text).fingerprint(finding)


def fingerprint_snippet(finding: Finding) -> Fingerprint | None:
    """Fingerprint from the report's snippet, with empty context; None without a snippet.

    The `code` part equals what `fingerprint_source` computes when the snippet holds
    the finding's whole lines (what the parsers keep: Semgrep `extra.lines`, SARIF
    whole-line snippets) or, on one line, exactly the match; so a finding read from
    source on one side and from its snippet on the other still lands in one group.
    """
    snippet = finding.snippet
    if snippet is None or snippet.strip() in _NO_SNIPPET:
        return None
    lines = [ln.rstrip("\r") for ln in snippet.split("\n")]
    start, end, start_col, end_col = _span(finding)
    if len(lines) > end - start + 1 and lines[-1] == "":
        lines.pop()  # the text ended with a newline
    if len(lines) == end - start + 2 and end < finding.end_line:
        lines.pop()  # the line the match's end column 1 points into
    if len(lines) == end - start + 1:
        flagged = _flagged(lines, start_col, end_col)
    else:
        flagged = "".join(lines)
    return _make(finding.rule_id, flagged, (), ())


def fingerprint_fallback(finding: Finding) -> Fingerprint:
    """Last resort when neither source nor snippet exists: rule, path, tool ids, message.

    Line-independent, so a finding that only moved still matches; identical findings in
    one file are then told apart by line order only (see docs/fingerprints.md).
    """
    ids = _SEP.join(f"{k}={v}" for k, v in sorted(finding.tool_ids.items()))
    data = _SEP.join(("fallback", finding.rule_id, finding.path, ids, finding.message))
    code = _blake2b(data.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return Fingerprint(value=_value(finding.rule_id, code, (), ()), code=code, fallback=True)


def needs_source(finding: Finding) -> bool:
    """True when only the file itself can give this finding a context fingerprint: it has no
    usable snippet, and its fingerprint is missing or is the fallback (neither the uploader's
    checkout nor the report had the code). The server then asks the forge for the file."""
    fp = finding.fingerprint
    if fp is not None and (fp.before or fp.after):
        return False  # read from the source already
    if fingerprint_snippet(finding) is not None:
        return False
    return fp is None or fp.fallback or fp.value == fingerprint_fallback(finding).value


def fingerprint_findings(
    findings: Iterable[Finding], read_source: Callable[[str], str | None]
) -> list[Finding]:
    """Every finding with `.fingerprint` set, in input order.

    Source text wins (read once per path), then the snippet, then the fallback. A line
    beyond the end of a file that exists raises ReportError naming the path and line.
    """
    findings = list(findings)
    per_path = Counter(f.path for f in findings)
    sources: dict[str, _Source | None] = {}
    out: list[Finding] = []
    for f in findings:
        if f.path not in sources:
            text = read_source(f.path)
            src = sources[f.path] = None if text is None else _Source(f.path, text)
            if src is not None and per_path[f.path] * DENSE > len(src.lines):
                src.densify()
        src = sources[f.path]
        if src is None:
            out.append(f.with_fingerprint(fingerprint_snippet(f) or fingerprint_fallback(f)))
            continue
        fix = None
        if f.fix is None and f.fix_text is not None:  # an autofix that waited for the code
            lines = [ln.rstrip("\r") for ln in src.lines[f.start_line - 1 : f.end_line]]
            fix = Fix.splice(lines, f.fix_text, f.start_line, f.start_col, f.end_line, f.end_col)
        done = f.with_fingerprint(src.fingerprint(f), fix)
        if fix is not None and f.snippet is None:
            # The code the fix replaces, read with it: a forge that shows fixes as a diff
            # (Bitbucket's fenced `diff`) needs its `-` lines.
            done = dataclasses.replace(done, snippet="\n".join(lines))
        out.append(done)
    return out


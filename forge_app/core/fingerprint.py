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

import dataclasses
import gc
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate, groupby, repeat

from forge_app.core.models import Finding, Fingerprint, Fix, ReportError

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

_NON_LF_WS = re.compile(r"[^\S\n]+")  # what str.split() splits on (Unicode whitespace), except LF


def _squash_lines(text: str) -> list[bytes]:
    """Every line of `text` squashed (as `_squash` does one line), in one pass over the whole text."""
    if text.isascii():
        return text.encode("ascii").translate(None, _ASCII_WS_KEEP_LF).split(b"\n")
    return _NON_LF_WS.sub("", text).encode("utf-8", "surrogatepass").split(b"\n")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a dense file builds ~4 objects per line: none of them
    can form a cycle, yet every 700 allocations start a collection that walks the young objects, and
    the older generations' walks cover every finding the caller holds (a third of the time, measured)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Dense:
    """Everything a dense file's fingerprints are read from, computed once per file with C-speed
    primitives (one translate over the whole text, one hash per line, zips of the hash list):

    `hashes[i]` is line i's hash ("" blank); `above[i]` counts the non-blank lines above line i, so
    the context before line i is `before[above[i]]` and the context from line i down is
    `after[above[i]]` (tuples shared by every finding there); `scopes[i]` is line i's scope hash.
    """

    __slots__ = ("above", "after", "before", "hashes", "scopes", "squashed")

    def __init__(self, lines: list[str], text: str) -> None:
        b2 = _blake2b
        self.squashed = sq = _squash_lines(text)
        self.hashes = hashes = [b2(x, digest_size=4).hexdigest() if x else "" for x in sq]
        nbh = [h for h in hashes if h]
        m = len(nbh)
        self.above = list(accumulate(map(bool, hashes), initial=0))
        # before[c]: the K hashes above the c-th non-blank line, nearest first; after[c]: from it down.
        self.before: list[tuple[str, ...]] = [tuple(nbh[max(0, c - K):c][::-1]) for c in range(min(K, m + 1))]
        self.before += zip(*(nbh[K - 1 - d:] for d in range(K)), strict=False)
        self.after: list[tuple[str, ...]] = list(zip(*(nbh[d:] for d in range(K)), strict=False))
        self.after += (tuple(nbh[c:]) for c in range(max(0, m - K + 1), m + 1))
        self.scopes = list(map([*hashes, ""].__getitem__, _headers(lines)))  # header -1: the "" at the end


def _headers(lines: list[str]) -> list[int]:
    """Every line's scope header (the index of the nearest non-blank line above that is less indented;
    -1 for none, a blank line or a top-level one), in one stack pass over runs of equally indented lines:
    a run shares its header, and its last line is the nearest header candidate for the lines below."""
    rest = map(len, map(str.lstrip, lines))
    indents = [n - r if r else -1 for n, r in zip(map(len, lines), rest, strict=False)]
    heads = [-1] * len(lines)
    stack: list[tuple[int, int]] = []  # (indent, line index), strictly increasing indents
    i = 0
    for ind, run in groupby(indents):
        k = len(list(run))
        if ind >= 0:
            while stack and stack[-1][0] >= ind:
                stack.pop()
            if stack:
                heads[i:i + k] = repeat(stack[-1][1], k)
            stack.append((ind, i + k - 1))
        i += k
    return heads


class _Source:
    """One file's lines, split once, with whitespace-free line hashes.

    Lazy for sparse files (a 50,000-line file with a few findings needs a few dozen
    hashes); in bulk for dense ones (`densify`), where every finding's context is read
    off per-line tables and a one-line finding costs two hashes (its value, and its code
    unless an earlier finding had the same).
    """

    __slots__ = ("_dense", "_hashes", "_heads", "_indents", "_parents", "lines", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        # Split on LF only, like the scanners count lines; a CR before it is whitespace.
        self.lines = text.split("\n")
        self._hashes: list[str | None] = [None] * len(self.lines)  # "" marks a blank line
        self._dense: _Dense | None = None
        self._indents: dict[int, int] = {}  # line index -> indentation (-1: blank)
        self._parents: dict[int, int] = {}  # line index -> its scope's header line index (-1: none)
        self._heads: list[int] | None = None  # every line's header, once a walk was long (`_headers`)

    def densify(self) -> None:
        """Every line's hash, context tuples and scope at once."""
        if self._dense is None:
            self._dense = _Dense(self.lines, self.text)

    def _indent(self, i: int) -> int:
        ind = self._indents.get(i)
        if ind is None:
            line = self.lines[i]
            rest = line.lstrip()
            ind = self._indents[i] = len(line) - len(rest) if rest else -1
        return ind

    def _line_hash(self, i: int) -> str:
        if self._dense is not None:
            return self._dense.hashes[i]
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
        if self._dense is not None:
            return self._dense.scopes[i]
        if self._heads is not None:
            return self._line_hash(self._heads[i]) if self._heads[i] >= 0 else ""
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
                self._heads = _headers(self.lines)
                return self.scope(i)
        parents[i] = j
        return self._line_hash(j) if j >= 0 else ""

    def context(self, i: int, step: int) -> tuple[str, ...]:
        """Hashes of the K nearest non-blank lines from index `i` going by `step`, nearest first."""
        d = self._dense
        if d is not None:
            return d.before[d.above[i + 1]] if step < 0 else d.after[d.above[i]]
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

    def _check(self, f: Finding) -> None:
        n = len(self.lines)
        if not (1 <= f.start_line <= n and 1 <= f.end_line <= n):
            line = f.start_line if not 1 <= f.start_line <= n else f.end_line
            raise ReportError(f"{self.path}: line {line} is outside the file (it has {n} lines)")

    def fingerprint(self, f: Finding) -> Fingerprint:
        self._check(f)
        start, end, start_col, end_col = _span(f)
        flagged = _flagged([ln.rstrip("\r") for ln in self.lines[start - 1 : end]], start_col, end_col)
        fp = _make(f.rule_id, flagged, self.context(start - 2, -1), self.context(end, 1))
        return Fingerprint(fp.value, fp.code, fp.before, fp.after, False, self.scope(start - 1))

    def fingerprint_all(self, findings: Sequence[Finding]) -> list[Fingerprint]:
        """`fingerprint` of each finding, the dense way: a one-line finding's code is cut from its
        line (its hash shared with every earlier finding of that rule and code), its context is two
        table lookups, its value one hash. Other shapes take `fingerprint`."""
        self.densify()
        d = self._dense
        assert d is not None
        lines = self.lines
        if "\r" in self.text:
            lines = [ln.rstrip("\r") for ln in lines]
        n, b2, sep = len(lines), _blake2b, _SEP
        squashed, above, before, after, scopes = d.squashed, d.above, d.before, d.after, d.scopes
        cut_codes: dict[tuple[str, str], str] = {}  # (rule, cut) -> code
        line_codes: dict[tuple[str, bytes], str] = {}  # (rule, squashed line) -> code
        out: list[Fingerprint] = []
        append = out.append
        for f in findings:
            i = f.start_line - 1
            if i != f.end_line - 1 or not 0 <= i < n:
                append(self.fingerprint(f))
                continue
            line, rule, s, e = lines[i], f.rule_id, f.start_col, f.end_col
            s = 0 if s is None else s - 1
            e = len(line) if e is None else e - 1
            code = None
            if 0 <= s < e <= len(line) and (s or e < len(line)):  # a part of the line, as _cut decides
                key = (rule, line[s:e])
                code = cut_codes.get(key)
                if code is None:
                    sq = _squash(key[1])
                    if not _too_small(sq):  # else widened to the line (_flagged)
                        code = cut_codes[key] = b2(rule.encode("utf-8", "surrogatepass") + b"\0" + sq,
                                                   digest_size=8).hexdigest()
            if code is None:
                lkey = (rule, squashed[i])
                code = line_codes.get(lkey)
                if code is None:
                    code = line_codes[lkey] = b2(rule.encode("utf-8", "surrogatepass") + b"\0" + lkey[1],
                                                 digest_size=8).hexdigest()
            bef, aft = before[above[i]], after[above[i + 1]]
            data = sep.join((rule, code, *bef, "|", *aft)).encode("utf-8", "surrogatepass")
            append(Fingerprint(b2(data, digest_size=16).hexdigest(), code, bef, aft, False, scopes[i]))
        return out


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
    flagged = _flagged(lines, start_col, end_col) if len(lines) == end - start + 1 else "".join(lines)
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

    Source text wins (read once per path, in order of first appearance), then the snippet,
    then the fallback. A line beyond the end of a file that exists raises ReportError naming
    the path and line. A file with more than one finding per DENSE lines is fingerprinted in
    bulk (`_Source.fingerprint_all`): the same fingerprints, several times faster.
    """
    findings = list(findings)
    by_path: dict[str, list[int]] = {}
    for k, f in enumerate(findings):
        by_path.setdefault(f.path, []).append(k)
    if len(by_path) == 1:
        return _fingerprint_path(next(iter(by_path)), findings, read_source)
    out: list[Finding] = list(findings)
    for path, idx in by_path.items():
        for k, done in zip(idx, _fingerprint_path(path, [findings[k] for k in idx], read_source), strict=True):
            out[k] = done
    return out


def _fingerprint_path(path: str, findings: list[Finding], read_source: Callable[[str], str | None]) -> list[Finding]:
    text = read_source(path)
    if text is None:
        return [f.with_fingerprint(fingerprint_snippet(f) or fingerprint_fallback(f)) for f in findings]
    src = _Source(path, text)
    if len(findings) * DENSE > len(src.lines):
        with _gc_paused():
            fps = src.fingerprint_all(findings)
            out = list(map(Finding.with_fingerprint, findings, fps))
    else:
        out = [f.with_fingerprint(src.fingerprint(f)) for f in findings]
    for k, f in enumerate(findings):
        if f.fix is None and f.fix_text is not None:  # an autofix that waited for the code
            out[k] = _with_fix(out[k], src)
    return out


def _with_fix(f: Finding, src: _Source) -> Finding:
    lines = [ln.rstrip("\r") for ln in src.lines[f.start_line - 1 : f.end_line]]
    fix = Fix.splice(lines, f.fix_text or "", f.start_line, f.start_col, f.end_line, f.end_col)
    if fix is None:
        return f
    done = f.with_fingerprint(f.fingerprint, fix) if f.fingerprint is not None else f
    if f.snippet is None:
        # The code the fix replaces, read with it: a forge that shows fixes as a diff
        # (a fenced `diff`) needs its `-` lines.
        done = dataclasses.replace(done, snippet="\n".join(lines))
    return done

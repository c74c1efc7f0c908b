"""Which head lines a change left untouched, and where they were in the base: read off a diff.

A diff is the strongest evidence of identity there is: a finding whose flagged lines the
diff does not touch is at the same code as before, whatever copies appear around it
(docs/fingerprints.md, "Identity from the diff"). Fingerprints only decide what the diff
cannot say.

Pure: `parse_unified_diff` takes the text of `git diff` (any context size, `-M` renames)
or a forge's PR diff; `LineMap` answers per head path. A `LineMap` describes a *complete*
diff: a file it does not mention is unchanged, line for line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Block = tuple[int, int, int, int]
"""One run of changed lines: base lines [old_lo, old_hi) were replaced by head lines
[new_lo, new_hi) (1-based, half-open; an empty range is a pure insertion or deletion
placed before that line)."""

_HUNK = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_BLOCKS = 1_000_000
"""More changed runs than this in one upload is not a diff a human made: ignore it."""


@dataclass(frozen=True)
class FileChange:
    old_path: str | None  # None: the file is new
    new_path: str | None  # None: the file was deleted
    blocks: tuple[Block, ...] = ()


@dataclass
class LineMap:
    """Head line -> base line for every line a complete diff leaves untouched."""

    renames: dict[str, str] = field(default_factory=dict)  # base path -> head path
    blocks: dict[str, tuple[Block, ...]] = field(default_factory=dict)  # head path -> its changed runs
    added: frozenset[str] = frozenset()  # head paths that did not exist in the base
    _old_of: dict[str, str] = field(default_factory=dict, repr=False)
    _starts: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._old_of = {new: old for old, new in self.renames.items()}
        self._starts = {path: [b[2] for b in blocks] for path, blocks in self.blocks.items()}

    @classmethod
    def from_changes(cls, changes: Iterable[FileChange]) -> LineMap:
        renames: dict[str, str] = {}
        blocks: dict[str, tuple[Block, ...]] = {}
        added: set[str] = set()
        for c in changes:
            if c.new_path is None:
                continue
            if c.old_path is None:
                added.add(c.new_path)
                continue
            if c.old_path != c.new_path:
                renames[c.old_path] = c.new_path
            if c.blocks:
                blocks[c.new_path] = tuple(sorted(c.blocks, key=lambda b: (b[2], b[0])))
        return cls(renames, blocks, frozenset(added))

    def base_place(self, path: str, start: int, end: int) -> tuple[str, int, int] | None:
        """(base path, base start, base end) of head lines start..end when the diff leaves
        every one of them (and the line breaks between them) untouched; else None."""
        if path in self.added or start < 1 or end < start:
            return None
        old = self._old_of.get(path, path)
        blocks = self.blocks.get(path)
        if not blocks:
            return old, start, end
        i = bisect.bisect_right(self._starts[path], end) - 1
        if i < 0:
            return old, start, end
        _old_lo, old_hi, new_lo, new_hi = blocks[i]
        if new_lo > start or start < new_hi:
            return None  # a change inside the flagged lines, or between them
        shift = new_hi - old_hi
        return old, start - shift, end - shift

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the uploader sends (`line_changes` in the upload body)."""
        return {"renames": dict(self.renames), "added": sorted(self.added),
                "blocks": {p: [list(b) for b in bs] for p, bs in self.blocks.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineMap:
        """Trusting: validate untrusted input first (`validate_line_changes`)."""
        return cls(dict(d.get("renames") or {}),
                   {p: tuple(tuple(b) for b in bs) for p, bs in (d.get("blocks") or {}).items()},
                   frozenset(d.get("added") or ()))


def validate_line_changes(value: Any) -> str | None:
    """None when `value` has the shape `LineMap.to_dict` writes, else what is wrong."""
    if not isinstance(value, dict):
        return "line_changes must be an object"
    renames, added, blocks = value.get("renames", {}), value.get("added", []), value.get("blocks", {})
    if not isinstance(renames, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in renames.items()):
        return "line_changes.renames must map old paths to new paths"
    if not isinstance(added, list) or not all(isinstance(p, str) for p in added):
        return "line_changes.added must be a list of paths"
    if not isinstance(blocks, dict):
        return "line_changes.blocks must map paths to lists of [old_lo, old_hi, new_lo, new_hi]"
    total = 0
    for path, runs in blocks.items():
        if not isinstance(runs, list):
            return f"line_changes.blocks[{path!r}] must be a list"
        total += len(runs)
        last_new = 0
        for b in runs:
            if (not isinstance(b, list) or len(b) != 4 or not all(type(x) is int and x >= 1 for x in b)
                    or b[1] < b[0] or b[3] < b[2] or b[2] < last_new):
                return (f"line_changes.blocks[{path!r}] must hold [old_lo, old_hi, new_lo, new_hi] runs "
                        "(1-based, half-open, in head line order)")
            last_new = b[3]
    if total > MAX_BLOCKS:
        return f"line_changes has more than {MAX_BLOCKS:,} changed runs"
    return None


def _unquote(path: str) -> str:
    """git's C-quoted path ("a/\\303\\251.py") back to text."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
        return raw.decode("utf-8", "replace")
    return path


def _strip(path: str) -> str | None:
    path = _unquote(path.split("\t", 1)[0].rstrip("\n"))
    if path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse_unified_diff(text: str) -> list[FileChange]:
    """The file changes of a unified diff (`git diff [-M] [-U<n>]` or a forge's PR diff).

    Renames come from `rename from/to` (git) or differing ---/+++ paths; added and deleted
    files from /dev/null. Binary files and mode changes carry no line runs.
    """
    out: list[FileChange] = []
    old: str | None = None
    new: str | None = None
    started = False
    blocks: list[Block] = []
    o = n = 0  # next base / head line inside a hunk
    left_o = left_n = 0  # lines still expected in the hunk
    run: list[int] | None = None  # [old_lo, new_lo] of the open run

    def close_run() -> None:
        nonlocal run
        if run is not None:
            blocks.append((run[0], o, run[1], n))
            run = None

    def flush() -> None:
        close_run()
        if started:
            out.append(FileChange(old, new, tuple(blocks)))

    for line in text.split("\n"):
        if left_o > 0 or left_n > 0:
            tag = line[:1]
            if tag == " " or (tag == "" and left_o > 0 and left_n > 0):
                close_run()
                o, n, left_o, left_n = o + 1, n + 1, left_o - 1, left_n - 1
                continue
            if tag == "-":
                if run is None:
                    run = [o, n]
                o, left_o = o + 1, left_o - 1
                continue
            if tag == "+":
                if run is None:
                    run = [o, n]
                n, left_n = n + 1, left_n - 1
                continue
            if tag == "\\":
                continue
            left_o = left_n = 0  # a truncated hunk: take what we have
        if line.startswith("\\"):
            continue
        m = _HUNK.match(line)
        if m and started:
            close_run()
            a, b = int(m.group(1)), int(m.group(2) or 1)
            c, d = int(m.group(3)), int(m.group(4) or 1)
            o, n = (a if b else a + 1), (c if d else c + 1)
            left_o, left_n = b, d
            if left_o == 0 and left_n == 0:
                continue
            continue
        if line.startswith("diff --git "):
            flush()
            started, blocks = True, []
            old, new = _git_header_paths(line[len("diff --git "):])
            continue
        if line.startswith("--- "):
            if not started or blocks or run is not None:
                flush()
                started, blocks = True, []
                new = None
            close_run()
            old = _strip(line[4:])
            continue
        if line.startswith("+++ ") and started:
            new = _strip(line[4:])
            continue
        if started and line.startswith("rename from "):
            old = _unquote(line[len("rename from "):])
        elif started and line.startswith("rename to "):
            new = _unquote(line[len("rename to "):])
        elif started and line.startswith("new file mode"):
            old = None
        elif started and line.startswith("deleted file mode"):
            new = None
    flush()
    return out


def _git_header_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths of `diff --git a/x b/x` (the unambiguous case); later lines may correct them."""
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        if end > 0:
            return _strip(rest[: end + 1]), _strip(rest[end + 2:])
    half = (len(rest) - 1) // 2
    if rest[half:half + 1] == " ":
        return _strip(rest[:half]), _strip(rest[half + 1:])
    parts = rest.split(" b/", 1)
    return (_strip(parts[0]), _strip("b/" + parts[1])) if len(parts) == 2 else (None, None)


def line_map_from_diff(text: str) -> LineMap:
    return LineMap.from_changes(parse_unified_diff(text))


@dataclass(frozen=True)
class ForgeDiff:
    """A PR/MR's diff as its forge shows it (what the server reads to place comments), and the
    commits it runs between.

    `base` is set only when the forge shows that the diff starts at the base branch's tip and that
    tip is in the head's history: then the base scan of that commit is what the diff maps from, and
    a CI checkout of the PR's merge result holds the same files as the head (a trivial merge).
    """

    text: str  # unified diff with ---/+++ headers, every file of the PR/MR
    head: str  # the commit the diff ends at
    base: str | None = None
    unknown: frozenset[str] = frozenset()  # head paths changed without lines shown (binary, too large)
    complete: bool = True  # False: the forge cut the file list short


def forge_line_map(diff: ForgeDiff, scanned: str, base_commit: str | None) -> tuple[LineMap | None, str]:
    """The forge diff's line mapping for a scan of commit `scanned` whose baseline is to be read at
    `base_commit` (None: not named by the upload), or None and why. The caller still checks that the
    baseline it found was scanned at the diff's base (`base_commit or diff.base`)."""
    if not diff.complete:
        return None, "the forge listed only part of the changed files"
    if diff.base is None:
        return None, "the forge does not show that the base branch's tip is in the head's history"
    if scanned.lower() != diff.head.lower():
        return None, f"the scan is of {scanned[:12]}, the PR/MR head is {diff.head[:12]}"
    if base_commit is not None and base_commit.lower() != diff.base.lower():
        return None, f"the upload names base commit {base_commit[:12]}, the PR/MR diff starts at {diff.base[:12]}"
    mapped = line_map_from_diff(diff.text)
    if diff.unknown:  # changed without lines shown: nothing on them is pinned by the diff
        mapped = LineMap(mapped.renames, mapped.blocks, mapped.added | diff.unknown)
    return mapped, ""


def file_patch(old_path: str | None, new_path: str, hunks: str) -> str:
    """One file's hunks (a forge's per-file `patch` or `diff`) with the ---/+++ header `parse_unified_diff`
    reads (old_path None: the file is new)."""
    old = "/dev/null" if old_path is None else f"a/{old_path}"
    return f"--- {old}\n+++ b/{new_path}\n{hunks.rstrip(chr(10))}\n"

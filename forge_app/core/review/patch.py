"""Parsing unified diffs into the lines a review may comment on.

Forges hand out a `patch` per file (hunks only), a `diff` per file, or a whole `git diff`.
All are unified diffs, so one parser serves all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True, slots=True)
class Hunk:
    """One hunk: `added` are new-side lines added by the change, `context` the new-side
    lines shown unchanged, `removed` the old-side lines removed."""

    old_start: int
    new_start: int
    added: frozenset[int]
    context: frozenset[int]
    removed: frozenset[int]

    def has_new_line(self, line: int) -> bool:
        return line in self.added or line in self.context

    def covers_added(self, start: int, end: int) -> bool:
        return all(n in self.added for n in range(start, end + 1))

    def covers_new(self, start: int, end: int) -> bool:
        return all(self.has_new_line(n) for n in range(start, end + 1))


@dataclass(slots=True)
class FileDiff:
    path: str
    old_path: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    deleted: bool = False

    def hunk_for(self, line: int) -> Hunk | None:
        for hunk in self.hunks:
            if hunk.has_new_line(line):
                return hunk
        return None

    def is_added(self, line: int) -> bool:
        return any(line in h.added for h in self.hunks)


def parse_hunks(patch: str) -> list[Hunk]:
    """Hunks of one file's patch (text starting at the first `@@`)."""
    hunks: list[Hunk] = []
    current: tuple[int, int] | None = None
    old = new = 0
    added: set[int] = set()
    context: set[int] = set()
    removed: set[int] = set()

    def close() -> None:
        if current is not None:
            hunks.append(Hunk(current[0], current[1], frozenset(added), frozenset(context), frozenset(removed)))

    for line in patch.splitlines():
        m = HUNK_RE.match(line)
        if m:
            close()
            old, new = int(m.group(1)), int(m.group(3))
            current = (old, new)
            added, context, removed = set(), set(), set()
            continue
        if current is None or line.startswith("\\"):
            continue
        tag = line[:1]
        if tag == "+":
            added.add(new)
            new += 1
        elif tag == "-":
            removed.add(old)
            old += 1
        elif tag == " " or line == "":
            context.add(new)
            old += 1
            new += 1
        else:  # the next file's header in a whole diff
            close()
            current = None
    close()
    return hunks


def _strip_prefix(path: str) -> str:
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def parse_git_diff(text: str) -> dict[str, FileDiff]:
    """A whole `git diff` (several files) keyed by the new path."""
    files: dict[str, FileDiff] = {}
    chunks = re.split(r"(?m)^(?=diff --git )", text)
    for chunk in chunks:
        if not chunk.startswith("diff --git "):
            continue
        header, _, body = chunk.partition("\n@@")
        old_path = new_path = None
        m = re.match(r"diff --git (\"?a/.+?\"?) (\"?b/.+?\"?)$", header.splitlines()[0])
        if m:
            old_path, new_path = _strip_prefix(m.group(1).strip('"')), _strip_prefix(m.group(2).strip('"'))
        deleted = False
        binary = False
        for line in header.splitlines()[1:]:
            if line.startswith("--- "):
                p = line[4:].strip()
                old_path = None if p == "/dev/null" else _strip_prefix(p)
            elif line.startswith("+++ "):
                p = line[4:].strip()
                if p == "/dev/null":
                    deleted = True
                else:
                    new_path = _strip_prefix(p)
            elif line.startswith("rename from "):
                old_path = line[len("rename from "):]
            elif line.startswith("rename to "):
                new_path = line[len("rename to "):]
            elif line.startswith("Binary files") or line.startswith("GIT binary patch"):
                binary = True
        if new_path is None:
            continue
        hunks = parse_hunks("@@" + body) if body else []
        files[new_path] = FileDiff(path=new_path, old_path=old_path, hunks=hunks, binary=binary, deleted=deleted)
    return files

"""Where a diff note goes: GitLab's `position` object for lines a merge request adds.

A position names the MR version by its three SHAs (from `GET .../versions`), the file by
both paths, and an added line by `new_line` alone. A multi-line note also needs a
`line_range` whose ends carry GitLab's line codes: `<sha1(path)>_<old>_<new>`, where
an added line's "old" number is the old-side line counter at that point of the hunk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from forge_app.core.review.patch import HUNK_RE


@dataclass(frozen=True, slots=True)
class DiffRefs:
    """One MR version's SHAs: what every position must quote."""

    base_sha: str
    start_sha: str
    head_sha: str
    version_id: int | None = None

    @classmethod
    def from_version(cls, version: dict[str, Any]) -> DiffRefs:
        return cls(base_sha=str(version["base_commit_sha"]), start_sha=str(version["start_commit_sha"]),
                   head_sha=str(version["head_commit_sha"]), version_id=version.get("id"))


@dataclass(frozen=True, slots=True)
class DiffFile:
    """One changed file of the MR: paths, and for each added line its old-side counter."""

    new_path: str
    old_path: str
    added_old: dict[int, int]


def added_lines_old_counter(diff: str) -> dict[int, int]:
    """new line number -> old-side counter, for every added line of a per-file diff."""
    out: dict[int, int] = {}
    old = new = 0
    in_hunk = False
    for line in diff.splitlines():
        m = HUNK_RE.match(line)
        if m:
            old, new, in_hunk = int(m.group(1)), int(m.group(3)), True
            continue
        if not in_hunk or line.startswith("\\"):
            continue
        tag = line[:1]
        if tag == "+":
            out[new] = old
            new += 1
        elif tag == "-":
            old += 1
        elif tag == " " or line == "":
            old += 1
            new += 1
        else:
            in_hunk = False
    return out


def line_code(path: str, old_line: int, new_line: int) -> str:
    return f"{hashlib.sha1(path.encode('utf-8')).hexdigest()}_{old_line}_{new_line}"


def _end(file: DiffFile, line: int) -> dict[str, Any]:
    return {"line_code": line_code(file.new_path, file.added_old.get(line, 0), line), "type": "new",
            "new_line": line}


def added_line_position(refs: DiffRefs, file: DiffFile, line: int, start_line: int | None = None) -> dict[str, Any]:
    """A text position on added line `line`, spanning from `start_line` when given."""
    position: dict[str, Any] = {
        "position_type": "text",
        "base_sha": refs.base_sha,
        "start_sha": refs.start_sha,
        "head_sha": refs.head_sha,
        "old_path": file.old_path,
        "new_path": file.new_path,
        "new_line": line,
    }
    if start_line is not None and start_line < line:
        position["line_range"] = {"start": _end(file, start_line), "end": _end(file, line)}
    return position

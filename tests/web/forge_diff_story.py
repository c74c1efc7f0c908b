"""The issue #13 case through the server's own diff: requests' `tests/test_requests.py`, where two new
tests are inserted right below an untouched one and repeat its flagged line. The PR upload carries
findings fingerprinted from the checkout (as `forge-app upload` sends them) but no diff of its own
(a shallow clone without the base commit); the server reads the PR/MR diff from the forge."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.parsing import load_report
from tests.cli.test_diff_git import COPY, PATTERN, RULE, TEST
from tests.support.gitrepo import scan

PATH = "tests/test_requests.py"
BASE = {PATH: TEST}
_first, _second = TEST.split("\n\n\ndef test_other")
HEAD = {PATH: _first + COPY.format(n=1) + COPY.format(n=2) + "\n\ndef test_other" + _second}
ORIGINAL, COPIES = 4, [9, 15]  # head lines: the untouched original, then the two inserted copies


def findings(files: dict[str, str]) -> list[dict[str, Any]]:
    """What `forge-app upload` sends for a scan of `files`: fingerprints with context from the checkout."""
    report = load_report(json.dumps(scan(files, PATTERN, RULE)).encode(), source="report.json")
    return [f.to_dict() for f in fingerprint_findings(report.findings, files.get)]


def git_patch(old: str, new: str) -> str:
    """One file's hunks as a forge shows them (GitHub's `patch`, GitLab's `diff`): git's own diff, which
    keeps the common prefix and so shows the copies below the original as the added lines (difflib, which
    the fakes use by default, may align them the other way)."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        a.write_text(old)
        b.write_text(new)
        out = subprocess.run(["git", "diff", "--no-index", "--no-color", "-U3", str(a), str(b)],
                             capture_output=True, text=True, check=False).stdout
    return out[out.index("@@"):]


def github_files(base: dict[str, str], head: dict[str, str]) -> list[dict[str, Any]]:
    """`GET /pulls/{n}/files` for the story: one modified file, its patch from git."""
    patch = git_patch(base[PATH], head[PATH])
    added = sum(1 for ln in patch.splitlines() if ln.startswith("+"))
    removed = sum(1 for ln in patch.splitlines() if ln.startswith("-"))
    return [{"sha": "0" * 40, "filename": PATH, "status": "modified", "additions": added, "deletions": removed,
             "changes": added + removed, "patch": patch}]


def places(rows: list[Any]) -> list[tuple[str, int, int | None]]:
    """(status, head line, base line) of a scan's stored findings."""
    return sorted((r.status, r.finding.start_line, r.base_line) for r in rows)


RIGHT = [("new", COPIES[0], None), ("new", COPIES[1], None), ("unchanged", ORIGINAL, ORIGINAL)]
"""What the diff says: the original is untouched, the copies are new (Semgrep's baseline mode agrees)."""
CONTEXT_ALONE = [("new", ORIGINAL, None), ("new", COPIES[0], None), ("unchanged", COPIES[1], ORIGINAL)]
"""What the neighbour lines alone say: the last copy took over the original's following lines."""

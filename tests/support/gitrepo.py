"""Small git repositories built by tests, and a fake scanner writing Semgrep JSON about them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ENV = ["-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false"]


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *ENV, *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Writes (or, for None, deletes) files and commits them; returns the SHA."""
        for path, text in files.items():
            target = self.root / path
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", message, "--allow-empty")
        return self.git("rev-parse", "HEAD")

    def move(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def files(self) -> dict[str, str]:
        names = self.git("ls-files").splitlines()
        return {n: (self.root / n).read_text() for n in names}


def scan(files: dict[str, str], pattern: str, rule: str, *, whole_line: bool = False) -> dict:
    """Semgrep JSON with one finding per regex match (columns of the match, or of the whole line)."""
    rx = re.compile(pattern)
    results = []
    for path, text in sorted(files.items()):
        for n, line in enumerate(text.split("\n"), 1):
            for m in rx.finditer(line):
                s, e = (0, len(line)) if whole_line else (m.start(), m.end())
                results.append({
                    "check_id": rule, "path": path,
                    "start": {"line": n, "col": s + 1, "offset": 0}, "end": {"line": n, "col": e + 1, "offset": 0},
                    "extra": {"message": "flagged", "severity": "ERROR", "metadata": {}, "lines": line,
                              "fingerprint": "requires login"},
                })
    return {"results": results, "errors": [], "version": "1.50.0"}

"""What the CLI reads from a git repository: the diff between two commits and files at a commit.

The I/O edge of `forge_app.core.linemap`: git runs here, the line mapping is computed there.
Every function answers None (never raises) when git, the repository or a commit is not at
hand (a shallow clone in CI), so callers fall back to fingerprints alone.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from forge_app.core.linemap import LineMap, line_map_from_diff

TIMEOUT = 120
MAX_FILE_BYTES = 20 * 1024 * 1024


def _git(root: Path | str, *args: str, timeout: float = TIMEOUT) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def resolve(root: Path | str, ref: str) -> str | None:
    """The full SHA of `ref` (a branch, tag, `HEAD~1`, a SHA), or None."""
    if ref.startswith("-"):
        return None  # never an option
    out = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.decode().strip() if out else None


def line_map(root: Path | str, base: str, head: str | None) -> LineMap | None:
    """The complete diff base..head (renames found by git's similarity, -U0) as a LineMap,
    with paths relative to `root`. Without `head`: base against the files in the checkout,
    which is what a scanner in CI read (on some CIs that is a merge commit, not the PR's head)."""
    if base.startswith("-") or (head or "").startswith("-"):
        return None
    out = _git(root, "-c", "core.quotepath=off", "diff", "--no-color", "--no-ext-diff", "--no-textconv",
               "--relative", "-M", "-U0", base, *([head] if head else []), "--")
    if out is None:
        return None
    return line_map_from_diff(out.decode("utf-8", "replace"))


class CommitFiles:
    """`read_source` for files as they are at one commit (`git cat-file --batch`, one process)."""

    def __init__(self, root: Path | str, commit: str) -> None:
        self.root, self.commit = str(root), commit
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "-C", self.root, "cat-file", "--batch"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
        return self._proc

    def __call__(self, path: str) -> str | None:
        if "\n" in path or path.startswith("/") or not path:
            return None
        try:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{self.commit}:./{path}\n".encode("utf-8", "surrogateescape"))
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3:
                return None  # "<name> missing"
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the LF after the object
        except (OSError, ValueError):
            return None
        if header[1] != b"blob" or size > MAX_FILE_BYTES:
            return None
        return data.decode("utf-8", "replace")

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None


def commit_reader(root: Path | str, commit: str) -> tuple[Callable[[str], str | None], Callable[[], None]]:
    files = CommitFiles(root, commit)
    return files, files.close

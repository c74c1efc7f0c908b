"""`forge-app diff`: offline base-vs-head classification of two reports.

Reads both reports, fingerprints each finding from the source under its root when the
file is there (else from the report's snippet, else from the tool's own ids), then
prints `{"new": [...], "fixed": [...], "unchanged": [...]}` as JSON on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forge_app.cli import git
from forge_app.core.diff import classify
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.linemap import LineMap
from forge_app.core.models import Finding, ReportError
from forge_app.core.parsing import load_report

PROG = "forge-app diff"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base", required=True, metavar="REPORT", help="report of the base commit (Semgrep JSON or SARIF)"
    )
    parser.add_argument("--head", required=True, metavar="REPORT", help="report of the head commit")
    parser.add_argument(
        "--base-root",
        metavar="DIR",
        help="checkout of the base commit; its files are preferred to the report's snippets",
    )
    parser.add_argument("--head-root", metavar="DIR", help="checkout of the head commit")
    parser.add_argument(
        "--git", metavar="DIR",
        help="a git repository holding both commits: the diff between them decides identity first, "
             "renames come from it, and files are read at each commit (unless --base-root/--head-root)",
    )
    parser.add_argument("--base-ref", metavar="REF", default="HEAD~",
                        help="with --git: the base commit (any git revision; default HEAD~)")
    parser.add_argument("--head-ref", metavar="REF", default="HEAD",
                        help="with --git: the head commit (default HEAD)")
    parser.add_argument(
        "--renames", metavar="FILE",
        help="renamed files: a JSON object {old path: new path}, or lines `old<TAB>new` "
             "(`git diff --name-status -M` output is accepted)",
    )


def source_reader(root: str | None, warn: Callable[[str], None]) -> Callable[[str], str | None]:
    """A `read_source` for `fingerprint_findings` that only reads regular files under `root`.

    A path that escapes the root (`..`, absolute, or a symlink out) is refused with a
    warning: a report must not make us read files it has no business naming. Refused
    and missing files fall back to the snippet.
    """
    if root is None:
        return lambda path: None
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"source root is not a directory: {root}")
    base = base.resolve()

    def read(path: str) -> str | None:
        try:
            target = (base / path).resolve()
        except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes
            return None
        if not target.is_relative_to(base):
            warn(f"not reading {path!r}: it is outside {root}")
            return None
        try:
            if not target.is_file():  # not FIFOs or devices: they could block or never end
                return None
            return target.read_bytes().decode("utf-8", "replace")
        except OSError:
            return None

    return read


def _load(path: str, root: str | None) -> list[Finding]:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        # With a root, absolute paths in the report become relative to it.
        return list(load_report(raw, source=path, root=str(Path(root).resolve()) if root else None).findings)
    except ValueError as e:  # ReportError, and whatever a parser lets slip (bad JSON, bad UTF-8)
        raise UsageError(_naming(path, str(e))) from None


def read_renames(path: str) -> dict[str, str]:
    """`--renames FILE`: a JSON object, or tab-separated `old new` lines (an optional leading
    status column, as `git diff --name-status -M` writes, is skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise UsageError(f"{path}: not valid JSON: {e}") from None
        if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in doc.items()):
            raise UsageError(f"{path}: renames must map old paths to new paths (strings)")
        return dict(doc)
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) == 3 and parts[0][:1] in ("R", "C"):
            parts = parts[1:]
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"{path}:{n}: expected `old<TAB>new`, got {line[:80]!r}")
        out[parts[0]] = parts[1]
    return out


def _fingerprinted(report: str, root: str | None, warn: Callable[[str], None],
                   read_git: Callable[[str], str | None] | None = None, git_root: str | None = None) -> list[Finding]:
    read = source_reader(root, warn)  # checks the root before the report is parsed
    if root is None and read_git is not None:
        read, root = read_git, git_root
    findings = _load(report, root)
    try:
        return fingerprint_findings(findings, read)
    except ReportError as e:
        raise UsageError(_naming(report, str(e))) from None


def _naming(path: str, message: str) -> str:
    """The parsers already start their messages with the file name; don't say it twice."""
    return message if message.startswith(path) else f"{path}: {message}"


def _item(f: Finding) -> dict[str, Any]:
    return {
        "check_id": f.rule_id,
        "path": f.path,
        "line": f.start_line,
        "end_line": f.end_line,
        "fingerprint": f.key,
        "message": f.message,
        "severity": f.severity,
    }


def render(
    new: Sequence[Finding], fixed: Sequence[Finding], unchanged: Sequence[tuple[Finding, Finding]]
) -> dict[str, Any]:
    """The JSON document `diff` prints; `fixed` items describe the base finding."""
    return {
        "new": [_item(f) for f in new],
        "fixed": [_item(f) for f in fixed],
        "unchanged": [{**_item(h), "base_path": b.path, "base_line": b.start_line} for h, b in unchanged],
    }


def _from_git(args: argparse.Namespace, closers: list[Callable[[], None]]
              ) -> tuple[LineMap | None, tuple[Callable[[str], str | None] | None, ...]]:
    """With --git: the line map base..head and a file reader for each commit."""
    repo = getattr(args, "git", None)
    if not repo:
        return None, (None, None)
    if not Path(repo).is_dir():
        raise UsageError(f"--git {repo} is not a directory")
    shas = []
    for flag, ref in (("--base-ref", args.base_ref), ("--head-ref", args.head_ref)):
        sha = git.resolve(repo, ref)
        if sha is None:
            raise UsageError(f"{flag} {ref!r} is not a commit of the git repository {repo}")
        shas.append(sha)
    lines = git.line_map(repo, shas[0], shas[1])
    if lines is None:
        raise UsageError(f"git could not diff {args.base_ref} and {args.head_ref} in {repo}")
    readers = []
    for sha in shas:
        read, close = git.commit_reader(repo, sha)
        closers.append(close)
        readers.append(read)
    return lines, tuple(readers)


def run(args: argparse.Namespace) -> int:
    """Prints the classification; 2 with a one-line error on bad input."""

    def warn(msg: str) -> None:
        print(f"{PROG}: warning: {msg}", file=sys.stderr)

    # Tens of thousands of long-lived findings make the cyclic GC rescan them over and
    # over while nothing here forms cycles worth collecting: pause it for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    closers: list[Callable[[], None]] = []
    try:
        try:
            renames = read_renames(args.renames) if getattr(args, "renames", None) else {}
            lines, readers = _from_git(args, closers)
            base = _fingerprinted(args.base, args.base_root, warn, readers[0], getattr(args, "git", None))
            head = _fingerprinted(args.head, args.head_root, warn, readers[1], getattr(args, "git", None))
        except UsageError as e:
            print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        result = classify(base, head, renames, lines=lines)
    finally:
        for close in closers:
            close()
        if gc_was_enabled:
            gc.enable()
    # dumps, not dump: dump streams through the pure-Python encoder, 10x slower here.
    sys.stdout.write(json.dumps(render(result.new, result.fixed, result.unchanged)) + "\n")
    sys.stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

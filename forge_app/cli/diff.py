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
from pathlib import Path
from typing import Any, Callable, Sequence

from forge_app.core.diff import classify
from forge_app.core.fingerprint import fingerprint_findings
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


def _fingerprinted(report: str, root: str | None, warn: Callable[[str], None]) -> list[Finding]:
    read = source_reader(root, warn)  # checks the root before the report is parsed
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


def run(args: argparse.Namespace) -> int:
    """Prints the classification; 2 with a one-line error on bad input."""

    def warn(msg: str) -> None:
        print(f"{PROG}: warning: {msg}", file=sys.stderr)

    # Tens of thousands of long-lived findings make the cyclic GC rescan them over and
    # over while nothing here forms cycles worth collecting: pause it for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            base = _fingerprinted(args.base, args.base_root, warn)
            head = _fingerprinted(args.head, args.head_root, warn)
        except UsageError as e:
            print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        result = classify(base, head)
    finally:
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

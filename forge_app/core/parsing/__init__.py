"""Report parsers: Semgrep JSON (scan output and the `semgrep ci` body) and SARIF 2.1.0.

`load_report` takes the raw bytes of a report file, `parse_report` the decoded
JSON; both auto-detect the format and return a `Report` whose findings have no
fingerprints yet. Anything we cannot trust raises `ReportError`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from forge_app.core.limits import check_result_count, limit_report
from forge_app.core.models import Report, ReportError
from forge_app.core.parsing.common import normalize_path
from forge_app.core.parsing.sarif import is_sarif, parse_sarif
from forge_app.core.parsing.semgrep import is_semgrep_ci, is_semgrep_json, parse_semgrep, parse_semgrep_ci

__all__ = ["ReportError", "detect_format", "load_report", "normalize_path", "parse_report"]

_GZIP_MAGIC = b"\x1f\x8b"


def detect_format(data: Any, *, source: str = "report") -> str:
    """"semgrep", "semgrep-ci" or "sarif"; ReportError saying what was found otherwise."""
    if is_sarif(data):
        version = data.get("version")
        if version == "2.1.0":
            return "sarif"
        raise ReportError(f"{source}: not Semgrep JSON or SARIF 2.1.0: it has 'runs' but its SARIF version is "
                          f"{version!r}; only 2.1.0 is supported")
    if is_semgrep_json(data):
        return "semgrep"
    if is_semgrep_ci(data):
        return "semgrep-ci"
    raise ReportError(f"{source}: not Semgrep JSON or SARIF 2.1.0: {_describe(data)}")


def parse_report(data: Any, *, source: str = "report", root: str | None = None) -> Report:
    """Parse decoded report JSON of any supported format.

    `source` names the input in error messages (e.g. the file name). `root`,
    the absolute path of the checkout, lets absolute paths in the report be
    made repository-relative.
    """
    kind = detect_format(data, source=source)
    check_result_count(data)  # before the expensive part: refuse what is too big to finish
    try:
        if kind == "sarif":
            report = parse_sarif(data, source=source, root=root)
        elif kind == "semgrep":
            report = parse_semgrep(data, source=source, root=root)
        else:
            report = parse_semgrep_ci(data, source=source, root=root)
    except RecursionError:
        raise ReportError(f"{source}: the report is nested too deeply to read") from None
    return limit_report(report)


def load_report(raw: bytes, *, source: str = "report", root: str | None = None) -> Report:
    """Decode UTF-8 JSON bytes (a BOM is allowed) and parse them; the caller un-gzips."""
    with _gc_paused():
        data = decode_json(raw, source=source)
        report = parse_report(data, source=source, root=root)
        del data  # freed by reference counting while the collector is still paused
    return report


def decode_json(raw: bytes, *, source: str = "report") -> Any:
    """UTF-8 JSON to Python, with errors that name the line and column."""
    if raw.startswith(_GZIP_MAGIC):
        raise ReportError(f"{source}: looks gzip-compressed; decompress it before parsing")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ReportError(f"{source}: not UTF-8 text{hint}: invalid byte at offset {exc.start}") from None
    try:
        return json.loads(text, parse_constant=lambda name: _reject_constant(name, source))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{source}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ReportError(f"{source}: the JSON is nested too deeply to read") from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while a report is decoded and read.

    JSON values cannot form cycles, and the collections that millions of new
    dicts trigger made loading a 24 MB SARIF log several times slower. The
    decoded document is dropped before the collector resumes, so it never sees it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reject_constant(name: str, source: str) -> Any:
    raise ReportError(f"{source}: malformed JSON: {name} is not a JSON number")


def _describe(data: Any) -> str:
    """A short, human description of a JSON value that is not a report."""
    if isinstance(data, dict):
        if not data:
            return "the JSON is an empty object"
        keys = ", ".join(repr(k) for k in list(data)[:8]) + (", ..." if len(data) > 8 else "")
        if isinstance(data.get("results"), list):
            return f"it has 'results' but they are not Semgrep results (each needs 'check_id'); keys: {keys}"
        return f"expected Semgrep's 'results' or SARIF's 'version' and 'runs'; found keys {keys}"
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return f"the JSON is {kinds.get(type(data), 'null')}, not an object"

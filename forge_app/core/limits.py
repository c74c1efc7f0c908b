"""Per-field limits on findings from any report or upload (README, "Limits on uploads").

Everything in a finding comes from a CI job or from the code it scanned, so each field is
checked once, here, right after parsing, before anything stores or renders it:

- what identifies or locates a finding (path, rule id, line and column numbers) must be
  sane, or the whole upload is refused with an error naming the finding: a path or rule id
  with NUL, control characters or lone surrogates, a path over 4 KB or that is a URI
  (`file:///etc/passwd` must never be stored as a path), a URL over 2 KB, a line number
  beyond 10,000,000;
- what only describes it (message, snippet, fix, metadata) is cut to 64 KB per finding,
  with a note for the scan's errors, so one noisy rule cannot refuse a whole scan.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from forge_app.core.models import Finding, Fix, Report, ReportError, RuleInfo

MAX_PATH_BYTES = 4 * 1024
MAX_URL_BYTES = 2 * 1024
MAX_RULE_ID = 1024
MAX_TEXT_BYTES = 64 * 1024  # message, snippet, fix, metadata: each finding's descriptive text
MAX_LINE = 10_000_000
MAX_LIST = 100  # cwe, owasp, references, technology entries kept per finding
MAX_METADATA_DEPTH = 32
MAX_RESULTS = 50_000  # findings per upload (all reports together): about 1 s of SQLite write lock
MAX_CONTAINERS = 2_000_000  # JSON objects and arrays per upload (40 per result at the cap): bounds parsed memory
CUT_NOTE = "…(cut by forge-app: over 64 KB)"

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATES_OR_NUL = re.compile(r"[\x00\ud800-\udfff]")
_URI_PATH = re.compile(r"^(?:file:|[A-Za-z][A-Za-z0-9+.-]*:/)", re.IGNORECASE)  # normalized: "//" became "/"


class LimitError(ReportError):
    """A finding that cannot be kept as it is; the message names it, `index` counts from 0."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _cut(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """At most `limit` UTF-8 bytes, never splitting a character, ending with a visible note."""
    room = limit - _size(CUT_NOTE)
    return text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore") + CUT_NOTE


def _clean_text(text: str) -> str:
    """NUL and lone surrogates out of descriptive text (they break storage and rendering)."""
    return _SURROGATES_OR_NUL.sub("\ufffd", text) if _SURROGATES_OR_NUL.search(text) else text


def _name(f: Finding, index: int) -> str:
    rule = f.rule_id[:80] if not _BAD_CHARS.search(f.rule_id[:80]) else ascii(f.rule_id[:80])
    return f"finding {index} (rule {rule})"


def _check_identifying(f: Finding, index: int) -> None:
    name = _name(f, index)
    if not f.rule_id or len(f.rule_id) > MAX_RULE_ID or _BAD_CHARS.search(f.rule_id):
        raise LimitError(f"{name}: the rule id must be 1 to {MAX_RULE_ID} characters without control characters "
                         "or lone surrogates", index)
    if _size(f.path) > MAX_PATH_BYTES:
        raise LimitError(f"{name}: the path is longer than {MAX_PATH_BYTES // 1024} KB", index)
    if _BAD_CHARS.search(f.path):
        raise LimitError(f"{name}: the path holds NUL, a control character or a lone surrogate", index)
    if _URI_PATH.match(f.path):
        raise LimitError(f"{name}: the path {f.path[:100]!r} is a URI, not a path relative to the repository "
                         "(an absolute file: URI outside the checkout is refused)", index)
    for label, value in (("start_line", f.start_line), ("end_line", f.end_line), ("start_col", f.start_col),
                         ("end_col", f.end_col)):
        if value is not None and not 0 <= value <= MAX_LINE:
            raise LimitError(f"{name}: {label} must be between 1 and {MAX_LINE:,}", index)
    if f.fix is not None and not (1 <= f.fix.start_line <= f.fix.end_line <= MAX_LINE):
        raise LimitError(f"{name}: the fix's lines must be between 1 and {MAX_LINE:,}", index)
    for url in (f.rule.help_uri, *f.rule.references):
        if url is not None and _size(url) > MAX_URL_BYTES:
            raise LimitError(f"{name}: a URL (help_uri or references) is longer than {MAX_URL_BYTES // 1024} KB", index)


def _metadata(value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The metadata when it serializes within the budget, else a stand-in saying it was cut."""
    if not value:
        return value, False
    try:
        size = len(orjson.dumps(value)) if _depth_ok(value) else None
    except (TypeError, orjson.JSONEncodeError):
        size = None
    if size is not None and size <= MAX_TEXT_BYTES:
        return value, False
    return {"forge_app_note": "metadata removed: larger than 64 KB or nested too deeply"}, True


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_METADATA_DEPTH:
                return False
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def _short_list(items: tuple[str, ...]) -> tuple[str, ...]:
    if len(items) <= MAX_LIST and all(_size(i) <= MAX_URL_BYTES for i in items):
        return items
    return tuple(_clean_text(i)[:MAX_URL_BYTES // 4] for i in items[:MAX_LIST])


def limit_finding(f: Finding, index: int) -> tuple[Finding, str | None]:
    """The finding within limits and a note when something was cut; LimitError when refused."""
    _check_identifying(f, index)
    cut: list[str] = []
    message = _clean_text(f.message)
    if _size(message) > MAX_TEXT_BYTES:
        message = _cut(message)
        cut.append("message")
    snippet = _clean_text(f.snippet) if f.snippet is not None else None
    if snippet is not None and _size(snippet) > MAX_TEXT_BYTES:
        snippet = _cut(snippet)
        cut.append("snippet")
    fix = f.fix
    if fix is not None and sum(_size(line) + 1 for line in fix.lines) > MAX_TEXT_BYTES:
        fix = None
        cut.append("fix (too large to suggest)")
    elif fix is not None and any(_SURROGATES_OR_NUL.search(line) for line in fix.lines):
        fix = Fix(fix.start_line, fix.end_line, tuple(_clean_text(line) for line in fix.lines))
    fix_text = f.fix_text
    if fix_text is not None and _size(fix_text) > MAX_TEXT_BYTES:
        fix_text = None
        cut.append("fix")
    metadata, dropped = _metadata(f.metadata)
    if dropped:
        cut.append("metadata")
    rule = f.rule
    lists = (rule.cwe, rule.owasp, rule.references, rule.technology)
    short = tuple(_short_list(x) for x in lists)
    small = {k: (_clean_text(v)[:1024] if isinstance(v, str) else v)
             for k, v in (("category", rule.category), ("confidence", rule.confidence))}
    if short != lists or small["category"] != rule.category or small["confidence"] != rule.confidence:
        rule = RuleInfo(short[0], short[1], small["category"], short[2], short[3], small["confidence"],
                        rule.help_uri)
        cut.append("rule details")
    tool_ids = f.tool_ids
    if _size(repr(tool_ids)) > MAX_TEXT_BYTES:
        tool_ids = {}
        cut.append("tool ids")
    changed = (cut or message is not f.message or snippet is not f.snippet or fix is not f.fix)
    if not changed:
        return f, None
    out = replace(f, message=message, snippet=snippet, fix=fix, fix_text=fix_text, metadata=metadata, rule=rule,
                  tool_ids=tool_ids)
    note = f"{_name(f, index)} at {f.path}:{f.start_line}: {', '.join(cut)} cut to 64 KB" if cut else None
    return out, note


def limit_findings(findings: Sequence[Finding], first_index: int = 0) -> tuple[list[Finding], list[str]]:
    """Every finding checked; notes for the scan's errors (at most 100, then a count)."""
    if first_index + len(findings) > MAX_RESULTS:
        raise TooManyResults(first_index + len(findings))
    out: list[Finding] = []
    notes: list[str] = []
    for i, f in enumerate(findings, first_index):
        kept, note = limit_finding(f, i)
        out.append(kept)
        if note:
            notes.append(note)
    if len(notes) > 100:
        notes = notes[:100] + [f"…and {len(notes) - 100} more findings cut to 64 KB"]
    return out, notes


class TooManyResults(ReportError):
    def __init__(self, count: int) -> None:
        super().__init__(f"the upload holds {count:,} findings, more than the limit of {MAX_RESULTS:,} per upload; "
                         "split it (one upload per report or per directory) or exclude noisy rules")
        self.count = count


def count_results(data: Any) -> int:
    """How many results a raw Semgrep or SARIF document holds, counted before parsing it."""
    if not isinstance(data, dict):
        return 0
    if isinstance(data.get("runs"), list):
        return sum(len(r["results"]) for r in data["runs"]
                   if isinstance(r, dict) and isinstance(r.get("results"), list))
    results = data.get("results")
    if isinstance(results, list):
        return len(results)
    findings = data.get("findings")
    return len(findings) if isinstance(findings, list) else 0


def check_result_count(data: Any, already: int = 0) -> None:
    count = already + count_results(data)
    if count > MAX_RESULTS:
        raise TooManyResults(count)


def limit_report(report: Report) -> Report:
    findings, notes = limit_findings(report.findings)
    if not notes and all(a is b for a, b in zip(findings, report.findings, strict=True)):
        return report
    return Report(report.tool, tuple(findings), (*report.errors, *notes), report.format)


_RESULT_KEYS = (b'"ruleId"', b'"check_id"', b'"rule_id"')


def quick_count(body: bytes) -> int:
    """An estimate of the results in a raw JSON upload, from its bytes alone, so that an upload far
    over MAX_RESULTS is refused before it is parsed (parsing is where the memory goes). A key inside
    a JSON string has its quotes escaped, so each match is a real key (or, rarely, a string value)."""
    return max(body.count(key) for key in _RESULT_KEYS)


def quick_containers(body: bytes) -> int:
    """An upper bound on the JSON objects and arrays in `body` (braces inside strings count too):
    parsed, each costs Python 60-250 bytes, so this bounds the memory an upload can take."""
    return body.count(b"{") + body.count(b"[")

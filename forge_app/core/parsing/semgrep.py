"""Semgrep's own JSON: `semgrep scan --json` output and the `semgrep ci` results upload body.

Both become the same `Finding`s. Semgrep JSON carries whole source lines
(`extra.lines`), so snippets and autofixes come out as whole lines; the `ci`
body carries no source, only `fixed_lines` when autofix is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forge_app.core.models import Finding, Fix, Report, ReportError, RuleInfo, Severity
from forge_app.core.parsing.common import json_type_name, normalize_path, pointer, semgrep_severity, split_lines

__all__ = ["is_semgrep_ci", "is_semgrep_json", "parse_semgrep", "parse_semgrep_ci"]

TOOL = "semgrep"
# What Semgrep writes into `extra.lines` / `extra.fingerprint` when not logged in.
LOGIN_PLACEHOLDER = "requires login"
_CI_SEVERITY: dict[int, Severity] = {0: "info", 1: "warning", 2: "error"}
_CI_KEYS = ("ignores", "searched_paths", "rule_ids", "token", "renamed_paths", "skipped_paths")


def is_semgrep_json(data: Any) -> bool:
    """`{"results": [...]}` whose results look like Semgrep's (with `check_id`).

    One recognisable result is enough: a broken one among them then gets an
    error that points at it instead of "this is not Semgrep JSON".
    """
    if not isinstance(data, dict) or "runs" in data:
        return False
    results = data.get("results")
    return isinstance(results, list) and (not results or any(isinstance(r, dict) and "check_id" in r for r in results))


def is_semgrep_ci(data: Any) -> bool:
    """The `semgrep ci` results body: `findings` with `check_id`/`path`/`line` items.

    An empty `findings` list only counts when a `ci`-only key is present too, so
    that other `{"findings": []}` documents are not mistaken for it.
    """
    if not isinstance(data, dict) or "results" in data or "runs" in data:
        return False
    findings = data.get("findings")
    if not isinstance(findings, list):
        return False
    if not findings:
        return any(k in data for k in _CI_KEYS)
    return any(isinstance(f, dict) and "check_id" in f and "line" in f for f in findings)


def parse_semgrep(data: Mapping[str, Any], *, source: str = "report", root: str | None = None) -> Report:
    """`semgrep scan --json` output as a Report; `is_ignored` (nosemgrep) results are dropped."""
    fields = _Fields(source)
    paths = _PathCache(fields, root)
    findings: list[Finding] = []
    for i, res in enumerate(fields.get_list(data, "results", ())):
        ptr = pointer("results", i)
        res = fields.obj_at(res, ptr)
        extra = fields.get_dict(res, "extra", ptr, default={})
        if extra.get("is_ignored") is True:
            continue
        findings.append(_scan_finding(res, extra, ptr, fields, paths))
    errors = tuple(_error_line(e) for e in fields.get_list(data, "errors", ()) if isinstance(e, dict))
    return Report(tool=TOOL, findings=tuple(findings), errors=errors, format="semgrep")


def parse_semgrep_ci(data: Mapping[str, Any], *, source: str = "report", root: str | None = None) -> Report:
    """The `semgrep ci` results body as a Report (its `ignores` are not findings)."""
    fields = _Fields(source)
    paths = _PathCache(fields, root)
    findings = tuple(
        _ci_finding(fields.obj_at(f, pointer("findings", i)), pointer("findings", i), fields, paths)
        for i, f in enumerate(fields.get_list(data, "findings", ()))
    )
    return Report(tool=TOOL, findings=findings, errors=(), format="semgrep")


# --------------------------------------------------------------------------- one result


def _scan_finding(res: Mapping[str, Any], extra: Mapping[str, Any], ptr: str, f: _Fields, paths: _PathCache) -> Finding:
    rule_id = f.get_str(res, "check_id", ptr)
    path = paths.get(f.get_str(res, "path", ptr), ptr + "/path")
    start = f.get_dict(res, "start", ptr)
    end = f.get_dict(res, "end", ptr)
    start_line, start_col = f.position(start, ptr + "/start")
    end_line, end_col = f.position(end, ptr + "/end")
    _check_span(f, ptr, start_line, start_col, end_line, end_col)
    metadata = f.get_dict(extra, "metadata", ptr + "/extra", default={})
    snippet = _lines_snippet(extra.get("lines"), start_line, end_line, end_col)
    tool_ids = {}
    fingerprint = extra.get("fingerprint")
    if isinstance(fingerprint, str) and fingerprint and fingerprint != LOGIN_PLACEHOLDER:
        tool_ids["semgrep.fingerprint"] = fingerprint
    return Finding(
        rule_id=rule_id,
        path=path,
        start_line=start_line,
        end_line=end_line,
        start_col=start_col,
        end_col=end_col,
        message=_text(extra.get("message")),
        severity=semgrep_severity(extra.get("severity", "")) or "warning",
        metadata=dict(metadata),
        rule=rule_info(metadata),
        snippet=snippet,
        fix=_scan_fix(extra, snippet, start_line, start_col, end_line, end_col),
        tool=TOOL,
        tool_ids=tool_ids,
        fix_text=_fix_text(extra, snippet, start_col, end_col),
    )


def _ci_finding(item: Mapping[str, Any], ptr: str, f: _Fields, paths: _PathCache) -> Finding:
    rule_id = f.get_str(item, "check_id", ptr)
    path = paths.get(f.get_str(item, "path", ptr), ptr + "/path")
    start_line = f.line(item, "line", ptr)
    end_line = f.line(item, "end_line", ptr, default=start_line)
    start_col = f.column(item, "column", ptr)
    end_col = f.column(item, "end_column", ptr)
    _check_span(f, ptr, start_line, start_col, end_line, end_col)
    metadata = f.get_dict(item, "metadata", ptr, default={})
    raw_sev = item.get("severity")
    severity = _CI_SEVERITY.get(raw_sev) if type(raw_sev) is int else semgrep_severity(raw_sev)
    fixed = item.get("fixed_lines")
    tool_ids = {f"semgrep.{k}": item[k] for k in ("syntactic_id", "match_based_id") if isinstance(item.get(k), str)}
    return Finding(
        rule_id=rule_id,
        path=path,
        start_line=start_line,
        end_line=end_line,
        start_col=start_col,
        end_col=end_col,
        message=_text(item.get("message")),
        severity=severity or "warning",
        metadata=dict(metadata),
        rule=rule_info(metadata),
        snippet=None,
        fix=_fixed_lines_fix(fixed, start_line, end_line),
        tool=TOOL,
        tool_ids=tool_ids,
    )


def _check_span(f: _Fields, ptr: str, start_line: int, start_col: int | None,
                end_line: int, end_col: int | None) -> None:
    """A finding that ends before it starts is a lie, not something to guess about."""
    if end_line < start_line:
        raise ReportError(f"{f.source}: a finding ends on line {end_line}, before its start line {start_line}", ptr)
    if end_line == start_line and start_col is not None and end_col is not None and end_col < start_col:
        raise ReportError(f"{f.source}: a finding ends at column {end_col}, before its start column {start_col}", ptr)


def rule_info(metadata: Mapping[str, Any]) -> RuleInfo:
    """RuleInfo from Semgrep rule metadata (cwe/owasp/... may be a string or a list)."""
    help_uri = metadata.get("source")
    if not isinstance(help_uri, str):
        help_uri = metadata.get("shortlink") if isinstance(metadata.get("shortlink"), str) else None
    confidence = metadata.get("confidence")
    category = metadata.get("category")
    return RuleInfo(
        cwe=str_tuple(metadata.get("cwe")),
        owasp=str_tuple(metadata.get("owasp")),
        category=category if isinstance(category, str) else None,
        references=str_tuple(metadata.get("references")),
        technology=str_tuple(metadata.get("technology")),
        confidence=confidence if isinstance(confidence, str) else None,
        help_uri=help_uri,
    )


def str_tuple(value: Any) -> tuple[str, ...]:
    """A string or list of strings as a tuple; anything else as ()."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _lines_snippet(lines: Any, start_line: int, end_line: int, end_col: int | None) -> str | None:
    """`extra.lines` as the snippet, only when it has exactly the finding's lines.

    A match that ends at column 1 of the line after it (it took the newline)
    may come with one line fewer; both counts are accepted.
    """
    if not isinstance(lines, str) or lines == LOGIN_PLACEHOLDER:
        return None
    count = len(split_lines(lines))
    want = end_line - start_line + 1
    if count == want or (end_col == 1 and count == want - 1):
        return "\n".join(split_lines(lines))
    return None


def _scan_fix(extra: Mapping[str, Any], snippet: str | None, start_line: int, start_col: int | None,
              end_line: int, end_col: int | None) -> Fix | None:
    """`fixed_lines` when given; else splice `fix` into the whole-line snippet by columns."""
    fixed = _fixed_lines_fix(extra.get("fixed_lines"), start_line, end_line)
    if fixed is not None:
        return fixed
    fix = extra.get("fix")
    if not isinstance(fix, str) or snippet is None:
        return None
    return Fix.splice(snippet.split("\n"), fix, start_line, start_col, end_line, end_col)


def _fix_text(extra: Mapping[str, Any], snippet: str | None, start_col: int | None, end_col: int | None) -> str | None:
    """Semgrep's `fix` kept for later when there is no code to splice it into (no login: the
    lines say "requires login"): the uploader's checkout or the forge's file completes it."""
    fix = extra.get("fix")
    if snippet is not None or not isinstance(fix, str) or start_col is None or end_col is None:
        return None
    if isinstance(extra.get("fixed_lines"), list) and extra["fixed_lines"]:
        return None
    return fix


def _fixed_lines_fix(fixed: Any, start_line: int, end_line: int) -> Fix | None:
    if isinstance(fixed, list) and fixed and all(isinstance(x, str) for x in fixed):
        return Fix(start_line, end_line, tuple(fixed))
    return None


def _error_line(err: Mapping[str, Any]) -> str:
    """One short line for a Semgrep error object (its `type` may be `[name, details]`)."""
    kind = err.get("type")
    if isinstance(kind, list) and kind:
        kind = kind[0]
    raw_level, raw_message = err.get("level"), err.get("message")
    level = raw_level if isinstance(raw_level, str) else "error"
    message = raw_message if isinstance(raw_message, str) else ""
    first = message.strip().splitlines()[0] if message.strip() else ""
    where = f" in {err['path']}" if isinstance(err.get("path"), str) else ""
    text = f"{level}: {kind if isinstance(kind, str) else 'error'}{where}: {first}".rstrip(": ")
    return text if len(text) <= 300 else text[:299] + "…"


# --------------------------------------------------------------------------- typed access


class _Fields:
    """Typed field access that turns a wrong shape into a ReportError with a JSON pointer."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _fail(self, what: str, ptr: str) -> ReportError:
        return ReportError(f"{self.source}: {what}", ptr)

    def obj_at(self, value: Any, ptr: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self._fail(f"expected an object, found {json_type_name(value)}", ptr)
        return value

    def get_list(self, obj: Mapping[str, Any], key: str, default: Any) -> list[Any]:
        value = obj.get(key, default)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise self._fail(f"expected {key!r} to be an array, found {json_type_name(value)}", pointer(key))
        return list(value)

    def get_dict(self, obj: Mapping[str, Any], key: str, ptr: str,
                 default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        value = obj.get(key)
        if value is None:
            if default is not None:
                return default
            raise self._fail(f"{key!r} is missing", ptr)
        if not isinstance(value, dict):
            raise self._fail(f"expected {key!r} to be an object, found {json_type_name(value)}", f"{ptr}/{key}")
        return value

    def get_str(self, obj: Mapping[str, Any], key: str, ptr: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            found = "missing" if key not in obj else ("empty" if isinstance(value, str) else json_type_name(value))
            raise self._fail(f"expected {key!r} to be a non-empty string, found {found}", f"{ptr}/{key}")
        return value

    def line(self, obj: Mapping[str, Any], key: str, ptr: str, default: int | None = None) -> int:
        value = obj.get(key, default)
        if type(value) is not int or value < 1:
            shown = "missing" if key not in obj and default is None else repr(value)
            raise self._fail(f"{key!r} must be a line number (an integer >= 1), found {shown}", f"{ptr}/{key}")
        return value

    def column(self, obj: Mapping[str, Any], key: str, ptr: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if type(value) is not int or value < 1:
            raise self._fail(f"{key!r} must be a column number (an integer >= 1), found {value!r}", f"{ptr}/{key}")
        return value

    def position(self, pos: Mapping[str, Any], ptr: str) -> tuple[int, int | None]:
        return self.line(pos, "line", ptr), self.column(pos, "col", ptr)


class _PathCache:
    """Normalizes each distinct path once; Semgrep paths are plain paths, not URIs."""

    def __init__(self, fields: _Fields, root: str | None) -> None:
        self.fields = fields
        self.root = root
        self.seen: dict[str, str] = {}

    def get(self, raw: str, ptr: str) -> str:
        hit = self.seen.get(raw)
        if hit is None:
            try:
                hit = normalize_path(raw, base=self.root, plain=True)
            except ReportError as exc:
                raise ReportError(f"{self.fields.source}: {exc.args[0]}", ptr) from None
            self.seen[raw] = hit
        return hit

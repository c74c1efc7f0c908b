"""The scan upload body: validated field by field, with a JSON pointer on every error.

Three forms are accepted (README, "Upload format"):
1. what `forge-app upload` sends: metadata plus `findings` already parsed and fingerprinted;
2. metadata plus a raw tool report under `report` (or several under `reports`);
3. a raw Semgrep JSON or SARIF document, with metadata in the query string.
Validation is hand-written rather than JSON-Schema-driven because it runs over tens
of thousands of findings per upload and must stay well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from forge_app.core.limits import (
    MAX_PATH_BYTES,
    MAX_URL_BYTES,
    LimitError,
    TooManyResults,
    check_result_count,
    limit_findings,
)
from forge_app.core.linemap import LineMap, validate_line_changes
from forge_app.core.models import SEVERITIES, Finding, Fingerprint, Fix, ReportError, RuleInfo, Severity
from forge_app.core.parsing import parse_report
from forge_app.core.parsing.common import is_absolute_reference, normalize_path

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
HEX_RE = re.compile(r"^[0-9a-f]{1,64}$")
MAX_TEXT = 1_000_000
MAX_NUMBER = 2**31 - 1  # PR/MR numbers: every forge keeps them in 32 bits
META_KEYS = (
    "ci_job_url", "ci_provider", "commit_author_name", "commit_author_email", "commit_author_username",
    "commit_title", "commit_timestamp", "pull_request_title", "pull_request_author_username",
    "started_at", "completed_at", "exit_code", "environment",
)


class UploadError(ValueError):
    """Bad upload: `code` is the JSON error code, the message a human sentence."""

    def __init__(self, message: str, pointer: str | None = None, code: str = "invalid_upload") -> None:
        self.pointer = pointer
        self.code = code
        super().__init__(f"{message} (at {pointer})" if pointer else message)


@dataclass
class Upload:
    commit: str
    repository: str | None = None
    branch: str | None = None
    base_branch: str | None = None
    base_commit: str | None = None  # the commit the PR/MR is compared against (merge base), when CI knows it
    renames: dict[str, str] = field(default_factory=dict)  # base path -> head path, for files the change moved
    line_changes: LineMap | None = None  # the complete diff base_commit -> commit, when the uploader had git
    pull_request: int | None = None
    findings: list[Finding] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the uploader had to guess


def _is_raw_report(doc: Mapping[str, Any]) -> bool:
    return "results" in doc or ("runs" in doc and "version" in doc)


def _opt_str(doc: Mapping[str, Any], key: str, pointer: str, max_len: int = 255) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise UploadError(f"{key} must be a string of at most {max_len} characters", f"{pointer}/{key}")
    return value


def _pull_request(value: Any, pointer: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UploadError("pull_request must be a positive integer", pointer)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UploadError("pull_request must be a positive integer", pointer) from None
    if number < 1 or number > MAX_NUMBER:
        raise UploadError(f"pull_request must be a positive integer up to {MAX_NUMBER}", pointer)
    return number


def _base_commit(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SHA_RE.match(value.lower()):
        raise UploadError("base_commit must be a full 40-character hexadecimal SHA", "/base_commit")
    return value.lower()


def _meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What CI says about the scan: URLs over 2 KB refused (like a finding's), other text cut to 1 KB."""
    out: dict[str, Any] = {}
    for key in META_KEYS:
        value = meta.get(key)
        if key not in meta or not isinstance(value, (str, int, type(None))):
            continue
        if isinstance(value, bool) or (isinstance(value, int) and not -(2**63) <= value < 2**63):
            continue
        if isinstance(value, str):
            if key.endswith("_url") and len(value.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES:
                raise UploadError(f"meta.{key} is longer than 2 KB", f"/meta/{key}")
            value = value[:1024]
        out[key] = value
    return out


def _renames(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 10_000:
        raise UploadError("renames must be an object of at most 10,000 old path -> new path entries", "/renames")
    out: dict[str, str] = {}
    for old, new in value.items():
        if not isinstance(new, str) or len(old) > MAX_PATH_BYTES or len(new) > MAX_PATH_BYTES:
            raise UploadError("renames values must be paths of at most 4 KB", f"/renames/{old[:100]}")
        try:
            out[normalize_path(old, plain=True)] = normalize_path(new, plain=True)
        except ReportError as exc:
            raise UploadError(exc.message, f"/renames/{old}", code="invalid_path") from None
    return out


def _root(value: Any) -> str | None:
    """The absolute path of the checkout a raw report's absolute file URIs are relative to."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 4096 or "\x00" in value or not is_absolute_reference(value):
        raise UploadError("root must be the absolute path (or file: URI) of the checkout the scanner ran in",
                          "/root")
    return value


def _line_changes(value: Any) -> LineMap | None:
    if value is None:
        return None
    problem = validate_line_changes(value)
    if problem:
        raise UploadError(problem, "/line_changes")
    def norm(path: str) -> str:
        try:
            return normalize_path(path, plain=True)
        except ReportError as exc:
            raise UploadError(exc.message, "/line_changes", code="invalid_path") from None

    return LineMap.from_dict({
        "renames": {norm(k): norm(v) for k, v in (value.get("renames") or {}).items()},
        "added": [norm(p) for p in value.get("added") or ()],
        "blocks": {norm(k): v for k, v in (value.get("blocks") or {}).items()},
    })


def parse_upload(
    doc: Any,
    query: Mapping[str, str] | None = None,
    fingerprint: Callable[[list[Finding]], list[Finding]] | None = None,
) -> Upload:
    """Validate an upload body; `fingerprint` fills in fingerprints for raw reports."""
    query = query or {}
    if not isinstance(doc, dict):
        raise UploadError("the upload must be a JSON object", "")
    meta_src: Mapping[str, Any] = query if _is_raw_report(doc) else doc
    commit = meta_src.get("commit")
    if not isinstance(commit, str) or not SHA_RE.match(commit.lower()):
        raise UploadError("commit must be a full 40-character hexadecimal SHA", "/commit")
    upload = Upload(
        commit=commit.lower(),
        repository=_opt_str(meta_src, "repository", ""),
        branch=_opt_str(meta_src, "branch", ""),
        base_branch=_opt_str(meta_src, "base_branch", ""),
        base_commit=_base_commit(meta_src.get("base_commit")),
        renames=_renames(doc.get("renames") if not _is_raw_report(doc) else None),
        line_changes=_line_changes(doc.get("line_changes") if not _is_raw_report(doc) else None),
        pull_request=_pull_request(meta_src.get("pull_request"), "/pull_request"),
    )
    if _is_raw_report(doc):
        reports = [(doc, "")]
    elif "findings" in doc:
        reports = []
        if not isinstance(doc["findings"], list):
            raise UploadError("findings must be a list", "/findings")
        _check_count(doc["findings"], 0)
        parsed = [finding_from_dict(f, f"/findings/{i}") for i, f in enumerate(doc["findings"])]
        try:
            upload.findings, notes = limit_findings(parsed)
        except LimitError as exc:
            raise UploadError(exc.message, f"/findings/{exc.index}", code="invalid_finding") from None
        upload.errors.extend(notes)
        upload.tools = [str(t)[:100] for t in doc.get("tools") or [] if isinstance(t, str)]
    elif "report" in doc:
        reports = [(doc["report"], "/report")]
    elif isinstance(doc.get("reports"), list):
        reports = [(r, f"/reports/{i}") for i, r in enumerate(doc["reports"])]
    else:
        raise UploadError(
            "the body is neither a forge-app upload (with findings or report) nor Semgrep JSON or SARIF 2.1.0", ""
        )
    root = _root(meta_src.get("root"))
    for raw, pointer in reports:
        _check_count(raw, len(upload.findings))
        try:
            report = parse_report(raw, source="upload", root=root)
        except LimitError as exc:
            raise UploadError(exc.message, pointer or None, code="invalid_finding") from None
        except ReportError as exc:
            inner = exc.pointer or ""
            raise UploadError(exc.message, f"{pointer}{inner}" or None,
                              code="invalid_report") from None
        found = list(report.findings)
        upload.findings.extend(fingerprint(found) if fingerprint else found)
        upload.tools.append(report.tool)
        upload.errors.extend(report.errors)
    errors = doc.get("errors") if not _is_raw_report(doc) else None
    if isinstance(errors, list):
        upload.errors.extend(str(e)[:1000] for e in errors[:1000])
    raw_notes = doc.get("notes") if not _is_raw_report(doc) else None
    if isinstance(raw_notes, list):
        upload.notes = [str(n)[:500] for n in raw_notes[:50] if isinstance(n, str)]
    meta = doc.get("meta") if not _is_raw_report(doc) else None
    if isinstance(meta, dict):
        upload.meta = _meta(meta)
    return upload


def _check_count(data: Any, already: int) -> None:
    try:
        check_result_count(data if not isinstance(data, list) else {"findings": data}, already)
    except TooManyResults as exc:
        raise UploadError(exc.message, None, code="too_many_results") from None


def _int(d: Mapping[str, Any], key: str, pointer: str, *, required: bool) -> int | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 10_000_000:
        raise UploadError(f"{key} must be a positive integer", f"{pointer}/{key}")
    return value


def _str_list(value: Any, pointer: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise UploadError("must be a list of strings", pointer)
    return tuple(value)


def _fingerprint(value: Any, pointer: str) -> Fingerprint | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UploadError("fingerprint must be an object", pointer)
    try:
        fp = Fingerprint.from_dict(value)
    except (KeyError, TypeError):
        raise UploadError("fingerprint needs value and code", pointer) from None
    for part in (fp.value, fp.code, *fp.before, *fp.after, *([fp.scope] if fp.scope else [])):
        if not HEX_RE.match(part):
            raise UploadError("fingerprint parts must be lowercase hexadecimal", pointer)
    return fp


def finding_from_dict(d: Any, pointer: str) -> Finding:
    """One untrusted finding from an upload; raises UploadError saying where and what."""
    if not isinstance(d, dict):
        raise UploadError("a finding must be an object", pointer)
    rule_id = d.get("rule_id")
    if not isinstance(rule_id, str) or not rule_id or len(rule_id) > 512:
        raise UploadError("rule_id must be a non-empty string", f"{pointer}/rule_id")
    raw_path = d.get("path")
    if not isinstance(raw_path, str):
        raise UploadError("path must be a string", f"{pointer}/path")
    try:
        path = normalize_path(raw_path, plain=True)
    except ReportError as exc:
        raise UploadError(exc.message, f"{pointer}/path", code="invalid_path") from None
    start = _int(d, "start_line", pointer, required=True)
    assert start is not None
    end = _int(d, "end_line", pointer, required=False) or start
    if end < start:
        raise UploadError("end_line is before start_line", f"{pointer}/end_line")
    severity = d.get("severity") or "warning"
    if severity not in SEVERITIES:
        raise UploadError(f"severity must be one of {', '.join(SEVERITIES)}", f"{pointer}/severity")
    message = d.get("message") or ""
    snippet = d.get("snippet")
    if not isinstance(message, str) or len(message) > MAX_TEXT:
        raise UploadError("message must be a string", f"{pointer}/message")
    if snippet is not None and (not isinstance(snippet, str) or len(snippet) > MAX_TEXT):
        raise UploadError("snippet must be a string", f"{pointer}/snippet")
    fix = None
    if d.get("fix") is not None:
        try:
            fix = Fix.from_dict(d["fix"])
        except (KeyError, TypeError, ValueError):
            raise UploadError("fix needs start_line, end_line and lines", f"{pointer}/fix") from None
        if fix.start_line < 1 or fix.end_line < fix.start_line:
            raise UploadError("fix lines are out of order", f"{pointer}/fix")
    fix_text = d.get("fix_text")  # an autofix the uploader had no code for (see Finding.fix_text)
    if fix_text is not None and (not isinstance(fix_text, str) or len(fix_text) > MAX_TEXT):
        raise UploadError("fix_text must be a string", f"{pointer}/fix_text")
    if fix is not None:
        fix_text = None
    metadata = d.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UploadError("metadata must be an object", f"{pointer}/metadata")
    tool_ids = d.get("tool_ids") or {}
    if not isinstance(tool_ids, dict):
        raise UploadError("tool_ids must be an object", f"{pointer}/tool_ids")
    return Finding(
        rule_id=rule_id,
        path=path,
        start_line=start,
        end_line=end,
        start_col=_int(d, "start_col", pointer, required=False),
        end_col=_int(d, "end_col", pointer, required=False),
        message=message,
        severity=cast(Severity, severity),  # checked against SEVERITIES above
        metadata=metadata,
        rule=RuleInfo(
            cwe=_str_list(d.get("cwe"), f"{pointer}/cwe"),
            owasp=_str_list(d.get("owasp"), f"{pointer}/owasp"),
            category=d.get("category") if isinstance(d.get("category"), str) else None,
            references=_str_list(d.get("references"), f"{pointer}/references"),
            technology=_str_list(d.get("technology"), f"{pointer}/technology"),
            confidence=d.get("confidence") if isinstance(d.get("confidence"), str) else None,
            help_uri=d.get("help_uri") if isinstance(d.get("help_uri"), str) else None,
        ),
        snippet=snippet,
        fix=fix,
        tool=str(d.get("tool") or "unknown")[:100],
        tool_ids={str(k): str(v) for k, v in tool_ids.items()},
        fingerprint=_fingerprint(d.get("fingerprint"), f"{pointer}/fingerprint"),
        fix_text=fix_text,
    )

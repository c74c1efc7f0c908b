"""The Code Insights report and its annotations, as plain data (no I/O).

Bitbucket's limits shape this: at most 1,000 annotations per report and 100 per
request, a required `summary` of at most 450 characters, `details` of at most 2,000.
The most severe findings go first, so the cap drops the least important ones.
`external_id` is the finding's fingerprint: stable, so re-posting updates in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from forge_app.core.escape import plain
from forge_app.core.review.plan import COMMENTED_MODES, ReviewItem
from forge_app.core.review.render import Counts, check_title, rule_link
from forge_app.forges.base import StatusReport

MAX_ANNOTATIONS = 1000
BATCH = 100
MAX_SUMMARY = 450
MAX_DETAILS = 2000
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
_BASE_SEVERITY = {"error": "HIGH", "warning": "MEDIUM", "info": "LOW"}


def clip(text: str, limit: int) -> str:
    """Code Insights fields are plain text: report text loses control characters (core.escape.plain)."""
    text = plain.text(text.strip())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def valid_url(url: str | None) -> str | None:
    """Bitbucket refuses statuses and reports whose links are not absolute http(s) URLs."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def severity(item: ReviewItem) -> str:
    """The finding's severity, one step higher when its rule blocks the merge."""
    base = _BASE_SEVERITY.get(item.finding.severity, "MEDIUM")
    if item.mode == "block":
        return SEVERITIES[max(0, SEVERITIES.index(base) - 1)]
    return base


def annotated(items: Sequence[ReviewItem]) -> list[ReviewItem]:
    """Commented and blocking findings, most severe first, one per fingerprint."""
    seen: set[str] = set()
    out = []
    for item in sorted(items, key=lambda i: (SEVERITIES.index(severity(i)), i.mode != "block",
                                             i.finding.path, i.finding.start_line, i.finding.rule_id)):
        if item.mode not in COMMENTED_MODES or item.finding.key in seen:
            continue
        seen.add(item.finding.key)
        out.append(item)
    return out


def annotation(item: ReviewItem, scan_url: str | None) -> dict[str, Any]:
    f = item.finding
    message = " ".join(f.message.split()) or "(no message)"
    details = [f.message.strip() or "(no message)"]
    if f.rule.cwe:
        details.append("CWE: " + ", ".join(f.rule.cwe))
    if f.rule.owasp:
        details.append("OWASP: " + ", ".join(f.rule.owasp))
    doc: dict[str, Any] = {
        "type": "report_annotation",
        "external_id": f.key,
        "annotation_type": "VULNERABILITY",
        "path": f.path,
        "line": max(1, f.start_line),
        "summary": clip(f"{f.rule_id}: {message}", MAX_SUMMARY),
        "details": clip("\n\n".join(details), MAX_DETAILS),
        "severity": severity(item),
    }
    if item.mode == "block":
        doc["result"] = "FAILED"
    link = valid_url(rule_link(f)) or valid_url(scan_url)
    if link:
        doc["link"] = link
    return doc


def annotation_docs(items: Sequence[ReviewItem], scan_url: str | None) -> list[dict[str, Any]]:
    return [annotation(i, scan_url) for i in annotated(items)[:MAX_ANNOTATIONS]]


def batches(docs: Sequence[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(docs), size):
        yield list(docs[start : start + size])


def report_result(counts: Counts) -> str:
    return "FAILED" if counts.blocking else "PASSED"


def report(status: StatusReport, shown: int) -> dict[str, Any]:
    counts = status.counts
    commented = len(annotated(status.new_items))
    lines = [check_title(counts) + "."]
    if commented > shown:
        lines.append(f"Bitbucket shows at most {MAX_ANNOTATIONS} annotations: the {shown} most severe of "
                     f"{commented} are annotated.")
    if status.details_url:
        lines.append(f"All findings: {status.details_url}")
    doc: dict[str, Any] = {
        "type": "report",
        "title": "forge-app",
        "details": clip(" ".join(lines), MAX_DETAILS),
        "report_type": "SECURITY",
        "reporter": "forge-app",
        "result": report_result(counts),
        "data": [
            {"title": "New findings", "type": "NUMBER", "value": counts.new},
            {"title": "Blocking", "type": "NUMBER", "value": counts.blocking},
            {"title": "Fixed", "type": "NUMBER", "value": counts.fixed},
            {"title": "Unchanged", "type": "NUMBER", "value": counts.unchanged},
        ],
    }
    link = valid_url(status.details_url)
    if link:
        doc["link"] = link
    return doc

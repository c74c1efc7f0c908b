"""The `forge-app` commit status: GitLab's states and a description within 255 characters."""

from __future__ import annotations

from typing import Any

from forge_app.forges.base import StatusReport

STATUS_NAME = "forge-app"
MAX_FIELD = 255  # GitLab's limit for description, target_url and ref
STATES = {"in_progress": "running", "success": "success", "failure": "failed", "neutral": "success"}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"


def description(report: StatusReport) -> str:
    """What the MR widget shows next to the status: the verdict and the counts."""
    c = report.counts
    if report.state == "in_progress":
        return _clip(report.title or "Publishing scan results")
    counts = f"{c.new} new, {c.fixed} fixed, {c.unchanged} unchanged"
    if report.state == "failure":
        return _clip(f"{c.blocking} blocking finding(s) introduced · {counts}")
    if report.state == "neutral":
        return _clip(f"The scan had errors, so results may be incomplete · {counts}")
    if c.new:
        return _clip(f"{c.new} new finding(s), none blocking · {counts}")
    return _clip(f"No new findings · {counts}")


def status_body(report: StatusReport, ref: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"state": STATES[report.state], "name": STATUS_NAME, "description": description(report)}
    if report.details_url and len(report.details_url) <= MAX_FIELD:
        body["target_url"] = report.details_url
    if ref and len(ref) <= MAX_FIELD:
        body["ref"] = ref
    return body

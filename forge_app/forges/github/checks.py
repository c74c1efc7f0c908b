"""The `forge-app` check run: one per head SHA, created once and then updated.

Its id is remembered per SHA (forge_objects, scope `sha:<sha>`), with the findings
already annotated, so a rescan of the same commit updates the same run and never
appends an annotation twice (GitHub appends annotations on every update).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from forge_app.core.escape import plain
from forge_app.core.review.plan import COMMENTED_MODES, ReviewItem
from forge_app.forges.base import StatusReport
from forge_app.forges.github import CHECK_NAME
from forge_app.forges.github.http import GitHubApi
from storage import Storage

ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit
LEVEL = {"block": "failure", "comment": "warning", "monitor": "notice"}
MAX_SUMMARY = 65_535
MAX_ANNOTATION_MESSAGE = 60_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotation(item: ReviewItem) -> dict[str, Any]:
    f = item.finding
    start, end = f.start_line, max(f.start_line, f.end_line)
    note: dict[str, Any] = {
        "path": f.path,
        "start_line": start,
        "end_line": end,
        "annotation_level": LEVEL.get(item.mode, "warning"),
        "message": plain.text(f.message.strip() or f.rule_id, MAX_ANNOTATION_MESSAGE),  # plain text fields
        "title": plain.text(f.rule_id, 255, one_line=True),
    }
    if start == end and f.start_col and f.end_col and f.end_col > f.start_col:
        note["start_column"], note["end_column"] = f.start_col, f.end_col
    return note


def _output(title: str, summary: str, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"title": title[:255] or CHECK_NAME, "summary": summary[:MAX_SUMMARY] or title}
    if annotations:
        out["annotations"] = list(annotations)
    return out


class CheckRuns:
    def __init__(self, api: GitHubApi, storage: Storage, repository_id: int, owner: str, repo: str) -> None:
        self.api = api
        self.storage = storage
        self.repository_id = repository_id
        self.where = {"owner": owner, "repo": repo}

    def remembered(self, sha: str) -> dict[str, Any] | None:
        value = self.storage.forge_object(self.repository_id, f"sha:{sha}", "check_run")
        return value if isinstance(value, dict) and value.get("id") else None

    def _remember(self, sha: str, value: dict[str, Any]) -> None:
        self.storage.remember_forge_object(self.repository_id, f"sha:{sha}", "check_run", value)

    async def _write(self, sha: str, body: dict[str, Any], known: dict[str, Any] | None) -> dict[str, Any]:
        if known is None:
            created = await self.api.call("POST", "/repos/{owner}/{repo}/check-runs", self.where,
                                          {"name": CHECK_NAME, "head_sha": sha, **body})
            known = {"id": created["id"], "annotated": []}
        else:
            await self.api.call("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}",
                                {**self.where, "check_run_id": known["id"]}, body)
        known = {**known, "status": body.get("status", known.get("status"))}
        self._remember(sha, known)
        return known

    async def waiting(self, sha: str, details_url: str | None = None) -> bool:
        """A queued run saying a scan upload is awaited; False when a run already exists."""
        if self.remembered(sha) is not None:
            return False
        body: dict[str, Any] = {"status": "queued", "output": _output(
            "Waiting for a scan upload",
            "forge-app reports here once CI uploads the scan of this commit (`forge-app upload`).")}
        if details_url:
            body["details_url"] = details_url
        await self._write(sha, body, None)
        return True

    def _pending(self, known: dict[str, Any] | None, report: StatusReport) -> list[tuple[str, dict[str, Any]]]:
        """Annotations not yet on the run. Monitor findings are never shown on the PR (annotations
        appear inline on the diff)."""
        done = set(known.get("annotated") or ()) if known else set()
        return [(i.finding.key, annotation(i)) for i in report.new_items
                if i.mode in COMMENTED_MODES and i.finding.key not in done]

    def report_requests(self, report: StatusReport) -> int:
        """Requests `report` makes on a run without annotations: one write per 50 of them, at least one."""
        return max(1, math.ceil(len(self._pending(None, report)) / ANNOTATIONS_PER_REQUEST))

    async def report(self, sha: str, report: StatusReport) -> None:
        known = self.remembered(sha)
        body: dict[str, Any] = {}
        if report.details_url:
            body["details_url"] = report.details_url
        if report.state == "in_progress":
            if known is not None and known.get("status") == "completed":
                return  # a rescan of a finished commit: the final update below says it all
            body.update(status="in_progress", started_at=_now(), output=_output(
                report.title, report.summary or "forge-app is publishing this scan's results."))
            await self._write(sha, body, known)
            return
        done = set(known.get("annotated") or ()) if known else set()
        pending = self._pending(known, report)
        batches = [pending[i : i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(pending), ANNOTATIONS_PER_REQUEST)]
        first = batches[0] if batches else []
        body.update(status="completed", conclusion=report.state, completed_at=_now(),
                    output=_output(report.title, report.summary, [a for _, a in first]))
        known = await self._write(sha, body, known)
        known = {**known, "annotated": sorted(done | {k for k, _ in first})}
        self._remember(sha, known)
        for batch in batches[1:]:
            await self.api.call("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}",
                                {**self.where, "check_run_id": known["id"]},
                                {"output": _output(report.title, report.summary, [a for _, a in batch])})
            known = {**known, "annotated": sorted(set(known["annotated"]) | {k for k, _ in batch})}
            self._remember(sha, known)

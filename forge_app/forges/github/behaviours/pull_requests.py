"""Pull requests: keep each one's head, branches and state; greet a new head with a waiting check run."""

from __future__ import annotations

from typing import Any

from gidgethub import HTTPException

from forge_app.forges.github.http import job_error
from forge_app.forges.router import Call, Router

router = Router()


def _head(p: dict[str, Any]) -> str | None:
    return p["head_sha"].lower() if isinstance(p.get("head_sha"), str) else None


def _closed(p: dict[str, Any]) -> bool:
    return p["action"] == "closed" or p.get("state") == "closed"


@router.register("pull_request", "opened", "reopened", "synchronize", "closed", "edited")
async def record(call: Call) -> None:
    """Head SHA and branches (a publish job compares them); closed: a late publish job does nothing."""
    p = call.payload
    assert call.repository_id is not None
    call.context.storage.record_github_pull_request(
        call.repository_id, p["number"], head_sha=_head(p), head_ref=p.get("head_ref"), base_ref=p.get("base_ref"),
        state="closed" if _closed(p) else "open", merged=bool(p.get("merged")))


@router.register("pull_request", "opened", "reopened", "synchronize")
async def waiting_check(call: Call) -> None:
    """A `queued` "waiting for a scan upload" check run on a new head, once per SHA, when the
    repository already uploads scans and this head's scan is not here yet (no noise otherwise)."""
    p, storage, repo_id = call.payload, call.context.storage, call.repository_id
    head_sha = _head(p)
    if _closed(p) or not head_sha or repo_id is None:
        return
    if not storage.repository_has_scans(repo_id) or storage.latest_pull_request_scan_of_commit(repo_id, head_sha):
        return
    from forge_app.forges.github.publish import open_installation_client

    async with open_installation_client(call.context, repo_id) as client:
        if client is None:
            return
        try:
            await client.checks.waiting(head_sha)
        except HTTPException as exc:
            raise job_error(exc, f"the waiting check run on {p['repository']}@{head_sha[:12]}") from None

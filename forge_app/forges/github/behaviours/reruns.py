"""Re-runs: someone asked GitHub to run forge-app's check again on a head SHA."""

from __future__ import annotations

import logging

from forge_app.forges.router import Call, Router

log = logging.getLogger(__name__)
router = Router()


@router.register("check_suite", "rerequested")
@router.register("check_run", "rerequested")
async def publish_again(call: Call) -> None:
    """Publish the latest scan of that head SHA again, on a new check run."""
    p, storage, repo_id = call.payload, call.context.storage, call.repository_id
    assert repo_id is not None
    scan_id = storage.latest_pull_request_scan_of_commit(repo_id, p["head_sha"])
    if scan_id is None:
        log.info("re-run requested for %s@%s but no pull request scan of it was uploaded", p["repository"],
                 p["head_sha"][:12])
        return
    storage.remember_forge_object(repo_id, f"sha:{p['head_sha']}", "check_run", None)  # a new run
    storage.enqueue_job("publish_scan", {"scan_id": scan_id, "forge": "github", "rerequested": True},
                        key=f"publish_scan:{scan_id}:rerun:{call.job.key or call.job.id}", group=f"repo:{repo_id}")

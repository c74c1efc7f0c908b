"""What forge-app does on each GitHub event: one module per area, each with its own `router`,
combined once below. Adding a behaviour (say, on `pull_request.labeled`) is one registered
function in one of these modules plus its test; the webhook then queues those deliveries too.
"""

from __future__ import annotations

import logging

from forge_app.forges.github.behaviours import installations, pull_requests, pushes, reruns
from forge_app.forges.github.events import JOB_KIND, prepare_repository
from forge_app.forges.router import Call, Router
from forge_app.jobs.worker import JobContext
from storage import Job

log = logging.getLogger(__name__)

ROUTER = Router(installations.router, pull_requests.router, pushes.router, reruns.router)

__all__ = ["JOB_KIND", "ROUTER", "handle_event"]


async def handle_event(context: JobContext, job: Job) -> None:
    """The `github_event` job: act on one verified, de-duplicated delivery."""
    p = job.payload
    context.storage.record_repository_visibility("github", p.get("visibility") or {})
    repository_id = prepare_repository(context.storage, p) if isinstance(p.get("repository"), str) else None
    ran = await ROUTER.dispatch(Call(context, job, p, repository_id), str(p.get("event")), p.get("action"))
    if not ran:
        log.info("GitHub %s.%s: no behaviour handles it (any more)", p.get("event"), p.get("action"))

"""Which function runs each kind of job. Forge adapters and notifiers add theirs here."""

from __future__ import annotations

import logging

from forge_app.jobs.worker import Handler, JobContext
from storage import Job

log = logging.getLogger(__name__)


async def publish_scan(context: JobContext, job: Job) -> None:
    """Publish a PR/MR scan on its forge (review comments, check/status)."""
    from forge_app.forges.registry import publisher_for

    scan = context.storage.scan(int(job.payload["scan_id"]))
    if scan is None:
        return
    publisher = publisher_for(context, scan)
    if publisher is None:
        log.info("scan %s of %s: %s is not set up for it (no connection or installation), nothing to publish",
                 scan.id, scan.repository, scan.forge)
        return
    await publisher(context, scan, job)


async def notify_scan(context: JobContext, job: Job) -> None:
    """Fan a scan out to the enabled integrations (webhook, Slack, email)."""
    from forge_app.notify.fanout import notify_scan as fan_out

    await fan_out(context, job)


async def complete_scan(context: JobContext, job: Job) -> None:
    """Finish an upload that waited for source files from its forge (then queue its follow-ups)."""
    from forge_app.services.completion import complete_scan as complete

    await complete(context, job)


def default_handlers() -> dict[str, Handler]:
    handlers: dict[str, Handler] = {"publish_scan": publish_scan, "notify_scan": notify_scan,
                                    "complete_scan": complete_scan}
    try:
        from forge_app.notify.fanout import extra_handlers
    except ImportError:
        pass
    else:
        handlers.update(extra_handlers())
    from forge_app.forges.registry import job_handlers

    handlers.update(job_handlers())
    from forge_app.slackapp.jobs import extra_handlers as slack_handlers  # the Slack app (#18)
    handlers.update(slack_handlers())
    return handlers

"""Fan a finished scan out to the integrations: the `notify_scan` job (queued by ingest).

Deciding is pure (forge_app.notify.rules); claiming the ledger rows and queuing one
`deliver_notification` job per (integration, scan, kind) happen in one transaction,
so running this job twice (a worker crash, a retry) sends nothing twice.
"""

from __future__ import annotations

import logging

from forge_app.jobs.errors import RetryLater
from forge_app.jobs.worker import Handler, JobContext
from forge_app.notify import retry
from forge_app.notify.delivery import JOB_KIND, deliver_notification
from forge_app.notify.rules import plan_notifications
from forge_app.notify.signing import new_message_id
from forge_app.slackapp.jobs import queue_scan as queue_slack_app
from storage import Job

log = logging.getLogger(__name__)

PROCESSING_RECHECK = 30.0


async def notify_scan(context: JobContext, job: Job) -> None:
    storage = context.storage
    scan = storage.scan(int(job.payload["scan_id"]))
    if scan is None or scan.status == "failed":
        return
    if scan.status != "done":
        raise RetryLater(f"scan {scan.id} is still {scan.status}", PROCESSING_RECHECK)
    queue_slack_app(storage, scan.id)  # the Slack app's channel subscriptions (forge_app/slackapp)
    integrations = storage.enabled_integrations()
    if not integrations:
        return
    plans = plan_notifications(scan, storage.scan_findings(scan.id, ["new"]), integrations, new_message_id)
    if not plans:
        return
    created = storage.claim_notifications(scan.id, plans, job_kind=JOB_KIND, max_attempts=retry.MAX_ATTEMPTS)
    log.info("scan %s of %s: %s notification(s) queued for %s matching integration(s)", scan.id, scan.repository,
             len(created), len(plans))


def extra_handlers() -> dict[str, Handler]:
    return {JOB_KIND: deliver_notification}

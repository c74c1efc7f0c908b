"""Fan a finished scan out to the integrations. (Replaced by the notifications module.)"""

from __future__ import annotations

from forge_app.jobs.worker import Handler, JobContext
from storage import Job


async def notify_scan(context: JobContext, job: Job) -> None:
    return None


def extra_handlers() -> dict[str, Handler]:
    return {}

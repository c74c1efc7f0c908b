"""The `complete_scan` job: finish an upload that waited for its source files.

It reads each needed file once at the scan's commit through the forge's source fetcher
(forge_app/forges/sources.py), re-fingerprints the findings that had only the fallback,
then triages and records the scan and queues its follow-up jobs (services/ingest.py,
`complete_upload`, one transaction). When the job gives up, the scan becomes `failed`
with the reason in `error_detail`; a file the forge does not have only keeps its
findings' fallback fingerprints.
"""

from __future__ import annotations

import asyncio
import logging

from forge_app.forges.registry import fetcher_for
from forge_app.forges.sources import read_sources
from forge_app.jobs.errors import GiveUp
from forge_app.jobs.worker import JobContext
from forge_app.services.ingest import complete_upload, paths_needing_source
from storage import Job

log = logging.getLogger(__name__)


async def complete_scan(context: JobContext, job: Job) -> None:
    storage = context.storage
    scan_id = int(job.payload["scan_id"])
    scan = storage.scan(scan_id)
    findings = storage.pending_upload(scan_id)
    if scan is None or findings is None:
        return  # completed (or failed) already: a redelivered job changes nothing
    repo = storage.repository(scan.repository_id)
    if repo is None:
        storage.fail_scan(scan_id, "the scan's repository no longer exists")
        return
    try:
        fetcher = fetcher_for(context, repo)
        sources, notes = await read_sources(fetcher, repo, scan.commit, paths_needing_source(findings))
        done = await asyncio.to_thread(complete_upload, storage, scan, findings, sources, notes)
    except GiveUp as exc:
        _fail(context, scan_id, str(exc))
        raise
    except Exception as exc:  # RetryLater or a surprise: the worker retries, until the last attempt
        if job.attempts >= job.max_attempts:
            _fail(context, scan_id, f"gave up after {job.attempts} attempts; the last error: {exc}")
        raise
    if done:
        log.info("scan %s of %s completed after reading %d source file(s)", scan_id, repo.full_name,
                 sum(1 for t in sources.values() if t is not None))


def _fail(context: JobContext, scan_id: int, detail: str) -> None:
    log.warning("scan %s could not be completed: %s", scan_id, detail)
    context.storage.fail_scan(scan_id, f"the scan could not be completed: {detail}")

"""Publishing a PR scan on Bitbucket Cloud (listed in forges/bitbucket/forge.py).

A scan is published only when a connection covers its repository (its repository
connection, else its workspace's); otherwise the factory says None and the scan stays
on the server.
"""

from __future__ import annotations

import logging

import httpx

from forge_app.forges.base import PullRequestRef
from forge_app.forges.bitbucket.client import BitbucketClient
from forge_app.forges.bitbucket.connection import connection_token, covering_connection
from forge_app.forges.bitbucket.events import PR_OBJECT, pr_scope
from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, job_error, transport_error
from forge_app.forges.flow import Publisher, publish_pull_request_scan
from forge_app.forges.ratelimit import connection_scope
from forge_app.jobs.errors import GiveUp
from forge_app.jobs.worker import JobContext
from forge_app.security.crypto import SecretsUnavailable
from storage import Connection, Job, ScanRecord

log = logging.getLogger(__name__)


async def publish_scan(context: JobContext, scan: ScanRecord, job: Job, connection: Connection) -> None:
    storage = context.storage
    if scan.pull_request is None:
        return
    try:
        token = connection_token(context.settings, connection)
    except SecretsUnavailable as exc:
        raise GiveUp(str(exc)) from None
    known = storage.forge_object(scan.repository_id, pr_scope(scan.pull_request), PR_OBJECT) or {}
    pr = PullRequestRef(repository=scan.repository, number=scan.pull_request, head_sha=scan.commit,
                        source_branch=known.get("source_branch") or scan.branch)
    where = f"{scan.repository} #{scan.pull_request}"
    async with BitbucketApi(connection.base_url, token, waits=storage, scope=connection_scope(connection)) as api:
        client = BitbucketClient(api, storage, scan.repository_id, scan.repository)
        try:
            await publish_pull_request_scan(storage, client, scan, pr, public_url=context.settings.public_url,
                                            retrying=job.attempts > 1,
                                            max_inline=context.settings.max_inline_comments)
        except BitbucketError as exc:
            raise job_error(exc, where) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, connection.base_url) from None
        finally:
            log.info("Bitbucket publish of scan %s on %s: %d requests", scan.id, where, api.calls)


def publisher_for(context: JobContext, scan: ScanRecord) -> Publisher | None:
    connection = covering_connection(context.storage, scan.repository)
    if connection is None:
        return None

    async def publish(ctx: JobContext, s: ScanRecord, job: Job) -> None:
        await publish_scan(ctx, s, job, connection)

    return publish


"""GitLab's job handlers: publishing an MR scan (`publish_scan`) and processing webhook
deliveries (`gitlab_event`). Listed in forges/gitlab/forge.py.

A scan is published on the MR version whose head is the scanned commit. When the MR
has moved on (a newer push), or is closed or merged, only the commit status is set:
diff notes on an outdated version would point at the wrong lines. When GitLab has
not yet recorded the scanned commit as a version (it does so asynchronously after a
push), the job waits and tries again.
"""

from __future__ import annotations

import logging
from typing import Any

from forge_app.core.review.plan import ReviewItem
from forge_app.core.review.render import Counts, check_summary, check_title
from forge_app.forges.base import PullRequestRef, StatusReport, StatusState
from forge_app.forges.flow import Publisher, publish_pull_request_scan, scan_url
from forge_app.forges.gitlab.client import GitLabClient, latest_version
from forge_app.forges.gitlab.errors import GitLabError, to_job_error
from forge_app.forges.gitlab.events import GitLabEvent
from forge_app.forges.gitlab.http import GitLabApi
from forge_app.forges.gitlab.lookup import connection_for_project
from forge_app.forges.ratelimit import connection_scope
from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.jobs.worker import JobContext
from forge_app.security.crypto import SecretsUnavailable, decrypt
from forge_app.web.metrics import counting_scan_requests
from storage import Connection, Job, ScanRecord, Storage

log = logging.getLogger(__name__)
MR_OBJECT = "gitlab_mr"  # forge_objects name, scope "pr:<iid>": the MR's state from webhooks
VERSION_WAIT_ATTEMPTS = 5
VERSION_WAIT_SECONDS = 30.0


def _final_state(scan: ScanRecord) -> StatusState:
    if scan.blocking:
        return "failure"
    return "neutral" if scan.errors else "success"


async def _status_only(storage: Storage, client: GitLabClient, scan: ScanRecord, pr: PullRequestRef,
                       public_url: str) -> None:
    url = scan_url(public_url, scan.id)
    new_items = [ReviewItem(sf.identity_id, sf.finding, sf.mode) for sf in storage.scan_findings(scan.id, ["new"])]
    counts = Counts(scan.count_new, scan.count_fixed, scan.count_unchanged,
                    blocking=sum(1 for i in new_items if i.mode == "block"), by_tool=scan.tool_counts)
    await client.set_status(pr, StatusReport(_final_state(scan), check_title(counts), check_summary(counts, [], url),
                                             counts, url, new_items))


def _link_repository(storage: Storage, repository_id: int, connection: Connection,
                     default_branch: str | None = None) -> None:
    """Tie the repository to its connection. A webhook's default branch is current and wins;
    the one recorded when the connection was checked only fills a gap."""
    repo = storage.repository(repository_id)
    if repo is None:
        return
    fields: dict[str, Any] = {}
    if repo.connection_id != connection.id:
        fields["connection_id"] = connection.id
    branch = default_branch or (None if repo.default_branch else connection.info.get("default_branch"))
    if branch and repo.default_branch != branch:
        fields["default_branch"] = branch
    storage.update_repository(repo.id, **fields)


def _token(context: JobContext, connection: Connection) -> str:
    try:
        return decrypt(context.settings.secret_key, connection.token_enc)
    except SecretsUnavailable as exc:
        raise GiveUp(f"GitLab connection {connection.id}: {exc}") from None


async def publish_merge_request_scan(context: JobContext, scan: ScanRecord, job: Job, connection: Connection) -> None:
    storage = context.storage
    assert scan.pull_request is not None
    _link_repository(storage, scan.repository_id, connection)
    api = GitLabApi(connection.base_url, _token(context, connection), waits=storage,
                    scope=connection_scope(connection))
    client = GitLabClient(api, scan.repository)
    pr = PullRequestRef(scan.repository, scan.pull_request, scan.commit, source_branch=scan.branch)
    where = f"!{scan.pull_request} of {scan.repository}"
    mr = storage.forge_object(scan.repository_id, f"pr:{scan.pull_request}", MR_OBJECT) or {}
    try:
        with counting_scan_requests("gitlab"):  # the version lookup counts toward the scan's budget
            await _publish_on_version(context, client, scan, pr, job, mr, where)
    except GitLabError as exc:
        raise to_job_error(exc, f"publishing scan {scan.id} on {where}") from None
    finally:
        api.close()
        log.info("scan %s on %s: %d GitLab request(s)", scan.id, where, api.requests_sent)


async def _publish_on_version(context: JobContext, client: GitLabClient, scan: ScanRecord, pr: PullRequestRef,
                              job: Job, mr: dict[str, Any], where: str) -> None:
    """Publish on the MR version whose head is the scanned commit; otherwise the commit status only."""
    storage, settings = context.storage, context.settings
    versions = await client.versions(pr)
    heads = {str(v.get("head_commit_sha", "")).lower() for v in versions}
    latest = str(latest_version(versions).get("head_commit_sha", "")).lower() if versions else None
    if mr.get("state") in ("closed", "merged"):
        log.info("scan %s: %s is %s; setting the commit status only", scan.id, where, mr["state"])
        await _status_only(storage, client, scan, pr, settings.public_url)
    elif latest == scan.commit.lower():
        await publish_pull_request_scan(storage, client, scan, pr, public_url=settings.public_url,
                                        retrying=job.attempts > 1, max_inline=settings.max_inline_comments)
    elif scan.commit.lower() in heads:
        log.info("scan %s: %s has moved on past %s; setting the commit status only", scan.id, where,
                 scan.commit[:12])
        await _status_only(storage, client, scan, pr, settings.public_url)
    elif job.attempts < VERSION_WAIT_ATTEMPTS:
        raise RetryLater(f"GitLab has not recorded {scan.commit[:12]} as a version of {where} yet",
                         VERSION_WAIT_SECONDS)
    else:
        log.warning("scan %s: %s is not a version of %s; setting the commit status only", scan.id,
                    scan.commit[:12], where)
        await _status_only(storage, client, scan, pr, settings.public_url)


def publisher_for_scan(context: JobContext, scan: ScanRecord) -> Publisher | None:
    """None when the scan is not an MR scan or no GitLab connection covers its project."""
    if scan.pull_request is None:
        return None
    connection = connection_for_project(context.storage, scan.repository, repository_id=scan.repository_id)
    if connection is None:
        return None

    async def publish(ctx: JobContext, s: ScanRecord, job: Job) -> None:
        await publish_merge_request_scan(ctx, s, job, connection)

    return publish


async def handle_event(context: JobContext, job: Job) -> None:
    """Keep what webhooks tell: the project's connection and default branch (the baseline
    for MR scans), and each MR's state and head (closed or merged MRs get no new notes)."""
    storage = context.storage
    event = GitLabEvent.from_payload(job.payload)
    connection = connection_for_project(storage, event.project, event.project_id)
    if connection is None:
        log.info("GitLab %s for %s: no connection covers it any more", event.name, event.project)
        return
    repo = storage.ensure_repository("gitlab", event.project)
    _link_repository(storage, repo.id, connection, event.default_branch)
    if event.kind == "merge_request" and event.iid is not None:
        scope = f"pr:{event.iid}"
        known = storage.forge_object(repo.id, scope, MR_OBJECT) or {}
        state = event.state or known.get("state")
        if known.get("state") == "merged":  # final in GitLab: a late delivery must not undo it
            state = "merged"
        storage.remember_forge_object(repo.id, scope, MR_OBJECT, {
            "state": state, "action": event.action, "head_sha": event.head_sha or known.get("head_sha"),
            "source_branch": event.source_branch, "target_branch": event.target_branch,
        })
    elif event.kind == "push" and event.default_branch:
        storage.remember_forge_object(repo.id, f"branch:{event.default_branch}", "gitlab_head", {"sha": event.after})
    log.info("GitLab %s for %s processed", event.name, event.project)


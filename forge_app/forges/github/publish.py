"""Publishing a PR scan on GitHub (the `publish_scan` job) and the GitHub job handlers.

Listed in forges/github/forge.py. A scan is published
only when its repository has an active installation of the app; otherwise the factory
returns None and nothing is sent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from gidgethub import HTTPException

from forge_app.core.review.plan import ReviewItem
from forge_app.core.review.render import Counts, check_summary, check_title
from forge_app.forges.base import PullRequestRef, StatusReport, StatusState
from forge_app.forges.flow import Publisher, publish_pull_request_scan, scan_url
from forge_app.forges.github.client import GitHubClient
from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.http import GitHubApi, job_error, open_http
from forge_app.forges.github.marketplace.serving import withhold_if_unserved
from forge_app.jobs.worker import JobContext
from storage import Job, ScanRecord, Storage

log = logging.getLogger(__name__)


async def resolve_installation(api: GitHubApi, storage: Storage, repository_id: int) -> int | None:
    """The repository's installation: from storage, else asked of GitHub (as the app) and remembered."""
    repo = storage.repository(repository_id)
    if repo is None:
        return None
    if repo.installation_id is not None:
        installation = storage.github_installation(repo.installation_id)
        if installation is not None and not installation.active:
            return None
        return repo.installation_id
    owner, _, name = repo.full_name.partition("/")
    found = await api.installation_for(owner, name)
    if not found or not found.get("id"):
        return None
    installation_id = int(found["id"])
    known = storage.github_installation(installation_id)
    if known is not None and not known.active:
        return None
    storage.upsert_github_installation(installation_id, account=(found.get("account") or {}).get("login"),
                                       account_type=(found.get("account") or {}).get("type"),
                                       repository_selection=found.get("repository_selection"))
    storage.update_repository(repository_id, installation_id=installation_id)
    return installation_id


@contextlib.asynccontextmanager
async def open_installation_client(context: JobContext, repository_id: int) -> AsyncIterator[GitHubClient | None]:
    """A GitHubClient bound to the repository's own installation, or None when there is none."""
    credentials = load_credentials(context.settings, context.storage)
    repo = context.storage.repository(repository_id)
    if repo is None or not credentials.can_authenticate:
        yield None
        return
    async with open_http() as http:
        api = GitHubApi(http, context.settings, context.storage, credentials)
        installation_id = await resolve_installation(api, context.storage, repository_id)
        if installation_id is None:
            log.info("forge-app is not installed on %s; nothing sent to GitHub", repo.full_name)
            yield None
            return
        api.installation_id = installation_id
        yield GitHubClient(api, context.storage, repository_id, repo.full_name)


def _final_report(storage: Storage, scan: ScanRecord, url: str) -> StatusReport:
    stored = storage.scan_findings(scan.id, ["new"])
    items = [ReviewItem(sf.identity_id, sf.finding, sf.mode) for sf in stored]
    counts = Counts(scan.count_new, scan.count_fixed, scan.count_unchanged,
                    blocking=sum(1 for i in items if i.mode == "block"), by_tool=scan.tool_counts)
    state: StatusState = "failure" if scan.blocking else ("neutral" if scan.errors else "success")
    return StatusReport(state, check_title(counts), check_summary(counts, [], url), counts, url, items)


async def _head_moved(client: GitHubClient, storage: Storage, scan: ScanRecord) -> bool:
    """True when the PR's head is no longer the scanned commit: comments would land on stale lines.

    The head recorded from webhooks costs nothing; only when it disagrees is GitHub asked
    (a missed webhook must not stop publishing)."""
    assert scan.pull_request is not None
    known = storage.github_pull_request(scan.repository_id, scan.pull_request)
    if known is None or not known.head_sha or known.head_sha == scan.commit:
        return False
    pull = await client.api.call("GET", "/repos/{owner}/{repo}/pulls/{pull_number}",
                                 {"owner": client.owner, "repo": client.repo, "pull_number": scan.pull_request})
    head = str(((pull or {}).get("head") or {}).get("sha") or "").lower()
    storage.record_github_pull_request(scan.repository_id, scan.pull_request, head_sha=head or None,
                                       head_ref=None, base_ref=None,
                                       state="closed" if pull.get("state") == "closed" else "open",
                                       merged=bool(pull.get("merged")))
    return bool(head) and head != scan.commit


async def publish_github_scan(context: JobContext, scan: ScanRecord, job: Job) -> None:
    storage, settings = context.storage, context.settings
    assert scan.pull_request is not None
    known = storage.github_pull_request(scan.repository_id, scan.pull_request)
    if known is not None and known.state == "closed":
        log.info("scan %s: %s#%s is closed; nothing published", scan.id, scan.repository, scan.pull_request)
        return
    async with open_installation_client(context, scan.repository_id) as client:
        if client is None:
            return
        pr = PullRequestRef(repository=scan.repository, number=scan.pull_request, head_sha=scan.commit,
                            source_branch=scan.branch)
        try:
            if await withhold_if_unserved(settings, client, scan, pr):
                return  # uploaded while its Marketplace account was not served: a neutral check run only
            if await _head_moved(client, storage, scan):
                log.info("scan %s: %s#%s moved past %s; only its check run is published", scan.id,
                         scan.repository, scan.pull_request, scan.commit[:12])
                await client.set_status(pr, _final_report(storage, scan, scan_url(settings.public_url, scan.id)))
                return
            await publish_pull_request_scan(storage, client, scan, pr, public_url=settings.public_url,
                                            retrying=job.attempts > 1, max_inline=settings.max_inline_comments)
        except HTTPException as exc:
            where = f"{scan.repository}#{scan.pull_request}"
            raise job_error(exc, f"the publication of scan {scan.id} on {where}") from None
        finally:
            log.info("scan %s on %s#%s: %d GitHub API request(s)", scan.id, scan.repository, scan.pull_request,
                     client.api.requests)


def github_publisher(context: JobContext, scan: ScanRecord) -> Publisher | None:
    """A publisher when the GitHub App is configured and the repository's installation is usable."""
    if scan.pull_request is None:
        return None
    credentials = load_credentials(context.settings, context.storage)
    if not credentials.can_authenticate:
        log.info("scan %s of %s: no GitHub App configured; nothing published", scan.id, scan.repository)
        return None
    repo = context.storage.repository(scan.repository_id)
    if repo is not None and repo.installation_id is not None:
        installation = context.storage.github_installation(repo.installation_id)
        if installation is not None and not installation.active:
            log.info("scan %s of %s: the app's installation is %s; nothing published", scan.id, scan.repository,
                     "removed" if installation.deleted else "suspended")
            return None
    return publish_github_scan


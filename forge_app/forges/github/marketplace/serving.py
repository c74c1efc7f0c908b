"""Serving only paying accounts: the decision at upload time and the neutral check run it leads to.

The decision is taken once, when a scan is uploaded (database reads only), and kept in
the scan's meta under META_KEY; publishing reads it back, so only scans made while the
account was served are ever published, and an upgrade takes effect on the next scan.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from forge_app.config import Settings
from forge_app.core.plans import LIMIT_REACHED, SERVING_META, AccountPlan, Serving, decide
from forge_app.core.plans import scan_serving as _scan_serving
from forge_app.core.review.render import Counts
from forge_app.forges.base import PullRequestRef, StatusReport
from forge_app.forges.github.marketplace import LISTING
from storage import Repository, ScanRecord, Storage

log = logging.getLogger(__name__)

META_KEY = SERVING_META  # reserved in a scan's meta: set by the server, never taken from the upload


def decide_for_repository(settings: Settings, storage: Storage, repo: Repository) -> Serving | None:
    """None when the Marketplace is off (no plans file) or the repository is not on GitHub."""
    if settings.marketplace_plans is None or repo.forge != "github":
        return None
    owner = repo.full_name.split("/", 1)[0]
    account = storage.marketplace_account_by_login(owner)
    plan = AccountPlan(login=account.login if account else owner, state=account.state if account else "none",
                       plan_name=account.plan_name if account else None)
    return decide(plan, settings.marketplace_plans, private=storage.repository_private("github", repo.full_name),
                  scanned_before=storage.owner_repositories_scanned_before("github", owner, repo.id), listing=LISTING)


async def _fetch_private(context: Any, repo: Repository) -> bool | None:
    """The repository's visibility asked of GitHub (one call, as its installation); None when unknown."""
    from forge_app.forges.github.publish import open_installation_client

    try:
        async with open_installation_client(context, repo.id) as client:
            if client is None:
                return None
            found = await client.api.call("GET", "/repos/{owner}/{repo}", {"owner": client.owner, "repo": client.repo})
    except Exception as exc:  # GitHub unreachable, app not installed, rate limited: decide without it
        log.info("visibility of %s could not be read from GitHub: %s", repo.full_name, type(exc).__name__)
        return None
    private = found.get("private") if isinstance(found, dict) else None
    return private if isinstance(private, bool) else None


async def decide_for_upload(context: Any, repo: Repository) -> Serving | None:
    """The decision for an upload. Database reads only, except once per repository whose visibility
    no webhook has told yet when the plan depends on it (then GitHub is asked and it is remembered)."""
    settings, storage = context.settings, context.storage
    serving = await asyncio.to_thread(decide_for_repository, settings, storage, repo)
    if serving is None or serving.served or storage.repository_private("github", repo.full_name) is not None:
        return serving
    if serving.title != LIMIT_REACHED or "visibility" not in (serving.reason or ""):
        return serving
    private = await _fetch_private(context, repo)
    if private is None:
        return serving
    await asyncio.to_thread(storage.record_repository_visibility, "github", {repo.full_name: private})
    return await asyncio.to_thread(decide_for_repository, settings, storage, repo)


def withheld_report(settings: Settings, serving: Serving, counts: Counts) -> StatusReport:
    title = serving.title or "no active plan"
    link = settings.marketplace_url
    summary = f"forge-app published nothing for this commit: {serving.reason}."
    if link:
        summary += f"\n\nChoose or change a plan on the GitHub Marketplace listing: {link}"
    return StatusReport("neutral", title, summary, counts, link, ())


async def withhold_if_unserved(settings: Settings, client: Any, scan: ScanRecord, pr: PullRequestRef) -> bool:
    """At the start of a GitHub publication: True (and only a neutral check run set) when the
    scan was uploaded while its account was not served."""
    serving = _scan_serving(scan.meta)
    if serving is None or serving.served:
        return False
    log.info("scan %s of %s: not published (%s)", scan.id, scan.repository, serving.reason)
    await client.set_status(pr, withheld_report(settings, serving, Counts(0, 0, 0)))
    return True

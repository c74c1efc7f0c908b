"""Reconciling accounts with the listing, since GitHub never resends a failed delivery.

Everything is fetched first (every plan, every page of its accounts); only then are the
changes computed and written in one transaction. A 401, 404 or 5xx on any page raises
MarketplaceApiError before anything is written: the sync reports it and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from forge_app.config import Settings
from forge_app.forges.github.marketplace.github_api import MarketplaceApi, open_http
from forge_app.forges.github.marketplace.ledger import PayloadError, from_listing, missing_from_listing
from storage import MarketplaceAccount, Storage
from storage.database import utcnow

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    plans: list[str] = field(default_factory=list)
    accounts: int = 0
    changes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    requests: int = 0


def _describe(before: MarketplaceAccount | None, after: MarketplaceAccount) -> str | None:
    if before is None:
        return f"{after.login}: {after.state} on {after.plan_name!r} (was unknown)"
    if (before.state, before.plan_id, before.unit_count, before.pending_plan_id) == \
            (after.state, after.plan_id, after.unit_count, after.pending_plan_id):
        return None
    parts = [f"{after.login}:"]
    if before.state != after.state:
        parts.append(f"{before.state} -> {after.state}")
    if before.plan_id != after.plan_id:
        parts.append(f"plan {before.plan_name!r} -> {after.plan_name!r}")
    if before.unit_count != after.unit_count:
        parts.append(f"units {before.unit_count} -> {after.unit_count}")
    if before.pending_plan_id != after.pending_plan_id:
        parts.append(f"pending change -> {after.pending_plan_name!r}" if after.pending_plan_id else
                     "pending change cleared")
    return " ".join(parts)


async def sync_accounts(settings: Settings, storage: Storage) -> SyncReport:
    report = SyncReport()
    async with open_http() as http:
        api = MarketplaceApi(http, settings, storage)
        plans = await api.plans()
        listed: list[tuple[str, list]] = []
        for plan in plans:
            if not isinstance(plan, dict) or not isinstance(plan.get("id"), int):
                continue
            report.plans.append(str(plan.get("name")))
            listed.append((str(plan.get("name")), await api.plan_accounts(plan["id"])))
        report.requests = api.requests
    now = utcnow()
    known = {a.account_id: a for a in storage.marketplace_accounts()}
    seen: set[int] = set()
    updates: list[MarketplaceAccount] = []
    for _plan_name, items in listed:
        for item in items:
            try:
                account_id = int(item["id"])
                after = from_listing(known.get(account_id), item, now)
            except (KeyError, TypeError, ValueError, PayloadError) as exc:
                report.skipped.append(f"an account of plan {_plan_name!r} could not be read: {exc}")
                continue
            seen.add(account_id)
            report.accounts += 1
            change = _describe(known.get(account_id), after)
            if change:
                report.changes.append(change)
                updates.append(after)
    for account_id, before in known.items():
        if account_id in seen or not listed:
            continue  # a listing without plans (not set up yet) says nothing about who cancelled
        cancelled = missing_from_listing(before, now)
        if cancelled is not None:
            report.changes.append(f"{before.login}: active -> cancelled (no plan lists it any more)")
            updates.append(cancelled)
    storage.save_marketplace_accounts(updates)
    log.info("Marketplace sync: %d plan(s), %d account(s), %d change(s)", len(report.plans), report.accounts,
             len(report.changes))
    return report

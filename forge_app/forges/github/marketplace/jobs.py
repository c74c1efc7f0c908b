"""Marketplace jobs: apply a listing webhook delivery, and the daily sync + data retention.

`marketplace_event` runs per account one at a time (group `marketplace:<id>`), so two
deliveries for one account never race. `marketplace_daily` reconciles with the listing,
revokes the tokens of accounts found cancelled, deletes the data of accounts cancelled
more than 30 days ago, then queues itself for the next day (the key makes that once a day).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from forge_app.forges.github.marketplace.github_api import (
    MarketplaceApi,
    MarketplaceApiError,
    client_credentials,
    open_http,
)
from forge_app.forges.github.marketplace.ledger import PayloadError, apply_event, parse_event
from forge_app.forges.github.marketplace.webhook import JOB_KIND
from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.jobs.worker import Handler, JobContext
from forge_app.security.crypto import SecretsUnavailable, decrypt
from storage import Job, MarketplaceAccount, Storage
from storage.database import utcnow

log = logging.getLogger(__name__)

DAILY = "marketplace_daily"
DAY = 86_400.0


async def revoke_tokens(context: JobContext, account: MarketplaceAccount) -> int:
    """Revoke every user token kept for the account; each is forgotten once GitHub confirms."""
    storage = context.storage
    tokens = storage.marketplace_user_tokens(account.account_id)
    if not tokens:
        return 0
    client_id, secret = client_credentials(context.settings, storage)
    if not client_id or not secret:
        log.warning("Marketplace: %s cancelled but its %d user token(s) cannot be revoked without "
                    "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the daily job tries again)", account.login, len(tokens))
        return 0
    revoked = 0
    async with open_http() as http:
        api = MarketplaceApi(http, context.settings, storage)
        for row in tokens:
            try:
                token = decrypt(context.settings.secret_key, row["token_enc"])
            except SecretsUnavailable:
                storage.drop_marketplace_user_token(account.account_id, row["user_id"])
                continue
            try:
                await api.revoke_user_token(token)
            except MarketplaceApiError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                    raise GiveUp(f"revoking the user token of {row['user_login']} ({account.login}): {exc}") from None
                raise RetryLater(f"revoking the user token of {row['user_login']} ({account.login}): {exc}") from None
            storage.drop_marketplace_user_token(account.account_id, row["user_id"])
            revoked += 1
    log.info("Marketplace: %d user token(s) of %s revoked", revoked, account.login)
    return revoked


async def handle_event(context: JobContext, job: Job) -> None:
    storage = context.storage
    try:
        event = parse_event(job.payload.get("payload") or {})
    except PayloadError as exc:
        raise GiveUp(f"marketplace_purchase delivery {job.payload.get('delivery')}: {exc}") from None
    current = storage.marketplace_account(event.purchase.account_id)
    updated = apply_event(current, event)
    if updated is None:
        log.info("marketplace_purchase %s for %s (effective %s) changes nothing (an older event or no-op)",
                 event.action, event.purchase.login, event.effective_date)
    else:
        storage.save_marketplace_accounts([updated])
        log.info("marketplace_purchase %s: %s is %s on %r", event.action, updated.login, updated.state,
                 updated.plan_name)
    account = updated or current
    if account is not None and account.state == "cancelled":
        await revoke_tokens(context, account)  # also on a redelivered job, until GitHub confirmed each


def purge_expired(storage: Storage, now: str | None = None) -> list[str]:
    """Delete the data of accounts cancelled 30 days ago that did not buy again."""
    done = []
    for account in storage.marketplace_accounts_to_purge(now or utcnow()):
        scans = storage.purge_owner_data("github", account.login)
        storage.save_marketplace_accounts([replace(account, purged_at=utcnow())])
        done.append(f"{account.login}: {scans} scan(s) deleted")
        log.info("Marketplace: data of %s deleted 30 days after its cancellation (%d scans)", account.login, scans)
    return done


def _next_day_key(now: float) -> tuple[str, float]:
    tomorrow = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return f"{DAILY}:{tomorrow.isoformat()}", now + DAY


def schedule_daily(storage: Storage, settings: object) -> None:
    """Queue today's run once (start-up calls this; each run queues the next day's)."""
    if getattr(settings, "marketplace_plans", None) is None:
        return
    today = datetime.now(UTC).date().isoformat()
    storage.enqueue_job(DAILY, {}, key=f"{DAILY}:{today}", group="marketplace:daily")


async def handle_daily(context: JobContext, job: Job) -> None:
    from forge_app.forges.github.marketplace.sync import sync_accounts

    storage = context.storage
    key, run_at = _next_day_key(time.time())
    storage.enqueue_job(DAILY, {}, key=key, group="marketplace:daily", run_at=run_at)
    try:
        report = await sync_accounts(context.settings, storage)
    except MarketplaceApiError as exc:
        log.warning("Marketplace daily sync failed, nothing changed: %s", exc)
    else:
        for change in report.changes:
            log.info("Marketplace sync: %s", change)
    for account in storage.marketplace_accounts():
        if account.state == "cancelled" and storage.marketplace_user_tokens(account.account_id):
            try:
                await revoke_tokens(context, account)
            except (GiveUp, RetryLater) as exc:
                log.warning("Marketplace: %s", exc)
    purge_expired(storage)


def handlers() -> dict[str, Handler]:
    return {JOB_KIND: handle_event, DAILY: handle_daily}

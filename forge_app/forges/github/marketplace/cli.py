"""`forge-app github marketplace-sync`: reconcile accounts with the GitHub Marketplace listing.

Prints the plans, the number of accounts and each change applied (stdout); a listing API
error (401, 404, 5xx) is reported with exit code 1 and nothing is changed.
"""

from __future__ import annotations

import argparse
import asyncio

from forge_app.cli.common import CliError, fail, load_settings, note


async def _revoke_cancelled(settings, storage) -> list[str]:
    """Cancelled accounts (by an event or by this sync) lose their customers' user tokens."""
    from forge_app.forges.github.marketplace.jobs import revoke_tokens
    from forge_app.jobs.errors import GiveUp, RetryLater
    from forge_app.jobs.worker import JobContext

    out = []
    for account in storage.marketplace_accounts():
        if account.state == "cancelled" and storage.marketplace_user_tokens(account.account_id):
            try:
                n = await revoke_tokens(JobContext(storage=storage, settings=settings), account)
            except (GiveUp, RetryLater) as exc:
                out.append(f"token revocation failed: {exc}")
            else:
                out.append(f"{account.login}: {n} user token(s) revoked")
    return out


def marketplace_sync(args: argparse.Namespace) -> int:
    from forge_app.forges.github.marketplace.github_api import MarketplaceApiError
    from forge_app.forges.github.marketplace.jobs import purge_expired
    from forge_app.forges.github.marketplace.sync import sync_accounts
    from storage import open_storage

    try:
        settings = load_settings("github marketplace-sync", expect_database=True, init=getattr(args, "init", False))
    except CliError as exc:
        return fail("github marketplace-sync", str(exc))
    if not settings.marketplace:
        note("FORGE_APP_MARKETPLACE_PLANS is not set: accounts are recorded, but every installation is served")
    storage = open_storage(settings.database)
    try:
        try:
            report = asyncio.run(sync_accounts(settings, storage))
        except MarketplaceApiError as exc:
            print(f"forge-app github marketplace-sync: {exc}; nothing was changed", flush=True)
            return 1
        where = "stubbed listing" if settings.marketplace_stubbed else "listing"
        print(f"plans ({where}): {', '.join(report.plans) or 'none'}")
        print(f"accounts: {report.accounts}")
        print(f"changes applied: {len(report.changes)}")
        for change in report.changes:
            print(f"  {change}")
        for skipped in report.skipped:
            print(f"  skipped: {skipped}")
        for revoked in asyncio.run(_revoke_cancelled(settings, storage)):
            print(f"  {revoked}")
        for purged in purge_expired(storage):
            print(f"  data deleted: {purged}")
    finally:
        storage.close()
    return 0

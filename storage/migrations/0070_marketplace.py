"""GitHub Marketplace: one row per account that ever bought a plan, repository visibility
seen in GitHub webhooks (the serving decision is a database read), and the customers'
user tokens from the Setup URL (revoked when the plan is cancelled)."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["marketplace_accounts"].create(
        {"account_id": int, "login": str, "login_key": str, "type": str, "state": str,
         "plan_id": int, "plan_name": str, "price_model": str, "unit_count": int, "billing_cycle": str,
         "on_free_trial": int, "free_trial_ends_on": str, "next_billing_date": str,
         "pending_plan_id": int, "pending_plan_name": str, "pending_effective_date": str,
         "effective_date": str, "cancelled_at": str, "purge_after": str, "purged_at": str,
         "created_at": str, "updated_at": str},
        pk="account_id",
    )
    db["marketplace_accounts"].create_index(["login_key"])
    db["repository_visibility"].create(
        {"forge": str, "full_name_key": str, "private": int, "updated_at": str},
        pk=("forge", "full_name_key"),
    )
    db["marketplace_user_tokens"].create(
        {"account_id": int, "user_id": int, "user_login": str, "token_enc": str, "created_at": str},
        pk=("account_id", "user_id"),
    )

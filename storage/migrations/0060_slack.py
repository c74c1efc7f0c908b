"""The Slack app: installations (one per workspace), channel subscriptions, OAuth states,
seen request signatures (replay guard) and the once-only ledger per subscription."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["slack_installations"].create(
        {"id": int, "team_id": str, "team_name": str, "enterprise_id": str, "app_id": str, "bot_user_id": str,
         "scopes": str, "bot_token": str, "refresh_token": str, "token_expires_at": float, "status": str,
         "installed_at": str, "updated_at": str},
        pk="id", not_null={"team_id", "bot_token", "status"},
    )
    db["slack_installations"].create_index(["team_id"], unique=True)
    db["slack_subscriptions"].create(
        {"id": int, "installation_id": int, "channel_id": str, "channel_name": str, "repositories": str,
         "policies": str, "enabled": int, "disabled_reason": str, "created_by": str, "created_at": str,
         "updated_at": str},
        pk="id", not_null={"installation_id", "channel_id"},
    )
    db["slack_subscriptions"].create_index(["installation_id", "channel_id"], unique=True)
    db["slack_oauth_states"].create({"state_hash": str, "expires_at": float, "used_at": float}, pk="state_hash")
    db["slack_requests_seen"].create({"signature": str, "seen_at": float}, pk="signature")
    db["slack_notifications_sent"].create(
        {"subscription_id": int, "identity_id": int, "scan_id": int, "sent_at": str},
        pk=("subscription_id", "identity_id"),
    )
    db["slack_notifications_sent"].create_index(["subscription_id", "scan_id"])

"""The Slack app's persistence: installations, channel subscriptions, OAuth states, the
replay guard and the once-only ledger (one row per subscription and finding identity).

Tokens arrive here already encrypted (forge_app.security.crypto); this module never
sees a plaintext token.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, utcnow
from storage.jobs import insert_job

POST_JOB = "slack_post"


@dataclass(frozen=True, slots=True)
class SlackInstallation:
    id: int
    team_id: str
    team_name: str | None
    enterprise_id: str | None
    app_id: str | None
    bot_user_id: str | None
    scopes: list[str]
    bot_token: str  # sealed
    refresh_token: str | None  # sealed; only with token rotation
    token_expires_at: float | None
    status: str  # active | revoked | needs_reinstall
    installed_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class SlackSubscription:
    id: int
    installation_id: int
    team_id: str
    channel_id: str
    channel_name: str | None
    repositories: list[str]
    policies: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: str
    updated_at: str


@dataclass(slots=True)
class SlackPlan:
    """For one subscription and one scan: the identities its filters match."""

    subscription_id: int
    identity_ids: list[int]


def _installation(row: dict[str, Any]) -> SlackInstallation:
    return SlackInstallation(
        id=row["id"], team_id=row["team_id"], team_name=row["team_name"], enterprise_id=row["enterprise_id"],
        app_id=row["app_id"], bot_user_id=row["bot_user_id"], scopes=json.loads(row["scopes"] or "[]"),
        bot_token=row["bot_token"], refresh_token=row["refresh_token"], token_expires_at=row["token_expires_at"],
        status=row["status"], installed_at=row["installed_at"], updated_at=row["updated_at"],
    )


def _subscription(row: dict[str, Any]) -> SlackSubscription:
    return SlackSubscription(
        id=row["id"], installation_id=row["installation_id"], team_id=row["team_id"], channel_id=row["channel_id"],
        channel_name=row["channel_name"], repositories=json.loads(row["repositories"] or "[]"),
        policies=json.loads(row["policies"] or "[]"), enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


_SUB_SELECT = ("SELECT s.*, i.team_id AS team_id FROM slack_subscriptions AS s "
               "JOIN slack_installations AS i ON i.id = s.installation_id")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SlackStore:
    database: Database

    # --- OAuth states ---------------------------------------------------------------

    def create_slack_state(self, state: str, ttl: float = 600.0) -> None:
        """Stored hashed: the state is a bearer credential for finishing one install."""
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM slack_oauth_states WHERE expires_at < ?", [now - 86400])
            db.execute("INSERT INTO slack_oauth_states (state_hash, expires_at) VALUES (?, ?)",
                       [_hash(state), now + ttl])

    def consume_slack_state(self, state: str) -> str:
        """'ok' (now used), or why not: 'unknown', 'expired', 'used'. Atomic, so a state works once."""
        now = time.time()
        with self.database.transaction() as db:
            row = self.database.one("SELECT * FROM slack_oauth_states WHERE state_hash = ?", [_hash(state)])
            if row is None:
                return "unknown"
            if row["used_at"] is not None:
                return "used"
            if row["expires_at"] < now:
                return "expired"
            db.execute("UPDATE slack_oauth_states SET used_at = ? WHERE state_hash = ?", [now, _hash(state)])
        return "ok"

    # --- replay guard ---------------------------------------------------------------

    def first_slack_request(self, signature: str, window: float = 600.0) -> bool:
        """True the first time a (verified) signature is seen; a replay of the same bytes is False."""
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM slack_requests_seen WHERE seen_at < ?", [now - window])
            cur = db.execute("INSERT OR IGNORE INTO slack_requests_seen (signature, seen_at) VALUES (?, ?)",
                             [signature, now])
            return bool(cur.rowcount)

    # --- installations --------------------------------------------------------------

    def save_slack_installation(
        self, *, team_id: str, team_name: str | None, enterprise_id: str | None, app_id: str | None,
        bot_user_id: str | None, scopes: list[str], bot_token: str, refresh_token: str | None,
        token_expires_at: float | None,
    ) -> SlackInstallation:
        """Insert, or on a reinstall replace the tokens and keep the id (so subscriptions stay)."""
        now = utcnow()
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO slack_installations (team_id, team_name, enterprise_id, app_id, bot_user_id, scopes, "
                "bot_token, refresh_token, token_expires_at, status, installed_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (team_id) DO UPDATE SET "
                "team_name = excluded.team_name, enterprise_id = excluded.enterprise_id, app_id = excluded.app_id, "
                "bot_user_id = excluded.bot_user_id, scopes = excluded.scopes, bot_token = excluded.bot_token, "
                "refresh_token = excluded.refresh_token, token_expires_at = excluded.token_expires_at, "
                "status = 'active', installed_at = excluded.installed_at, updated_at = excluded.updated_at",
                [team_id, team_name, enterprise_id, app_id, bot_user_id, json.dumps(scopes), bot_token,
                 refresh_token, token_expires_at, now, now],
            )
        found = self.slack_installation_for_team(team_id)
        assert found is not None
        return found

    def slack_installation(self, installation_id: int) -> SlackInstallation | None:
        row = self.database.one("SELECT * FROM slack_installations WHERE id = ?", [installation_id])
        return _installation(row) if row else None

    def slack_installation_for_team(self, team_id: str) -> SlackInstallation | None:
        row = self.database.one("SELECT * FROM slack_installations WHERE team_id = ?", [team_id])
        return _installation(row) if row else None

    def slack_installations(self) -> list[SlackInstallation]:
        return [_installation(r) for r in self.database.query("SELECT * FROM slack_installations ORDER BY id")]

    def update_slack_installation(self, installation_id: int, **fields: Any) -> None:
        allowed = {"team_name", "status", "bot_token", "refresh_token", "token_expires_at"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update slack installation fields {sorted(bad)}")
        if not fields:
            return
        sets = "".join(f"{k} = ?, " for k in fields)
        with self.database.transaction() as db:
            db.execute(f"UPDATE slack_installations SET {sets}updated_at = ? WHERE id = ?",
                       [*fields.values(), utcnow(), installation_id])

    def delete_slack_installation(self, installation_id: int) -> bool:
        """Remove it with its tokens, subscriptions, ledger and queued posts."""
        with self.database.transaction() as db:
            subs = [r["id"] for r in self.database.query(
                "SELECT id FROM slack_subscriptions WHERE installation_id = ?", [installation_id])]
            for sub_id in subs:
                db.execute("DELETE FROM slack_notifications_sent WHERE subscription_id = ?", [sub_id])
            db.execute("DELETE FROM slack_subscriptions WHERE installation_id = ?", [installation_id])
            cur = db.execute("DELETE FROM slack_installations WHERE id = ?", [installation_id])
            db.execute("UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE group_key = ? "
                       "AND status = 'queued'", [utcnow(), slack_group(installation_id)])
            return bool(cur.rowcount)

    # --- subscriptions --------------------------------------------------------------

    def save_slack_subscription(
        self, installation_id: int, channel_id: str, channel_name: str | None, repositories: list[str],
        policies: list[str], created_by: str | None = None,
    ) -> SlackSubscription:
        """One subscription per channel: saving again replaces its filters and enables it."""
        now = utcnow()
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO slack_subscriptions (installation_id, channel_id, channel_name, repositories, policies, "
                "enabled, disabled_reason, created_by, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 1, NULL, ?, ?, ?) "
                "ON CONFLICT (installation_id, channel_id) DO UPDATE SET channel_name = "
                "COALESCE(excluded.channel_name, channel_name), repositories = excluded.repositories, "
                "policies = excluded.policies, enabled = 1, disabled_reason = NULL, updated_at = excluded.updated_at",
                [installation_id, channel_id, channel_name, json.dumps(repositories), json.dumps(policies),
                 created_by, now, now],
            )
        found = self.slack_subscription_for_channel(installation_id, channel_id)
        assert found is not None
        return found

    def slack_subscription(self, subscription_id: int) -> SlackSubscription | None:
        row = self.database.one(_SUB_SELECT + " WHERE s.id = ?", [subscription_id])
        return _subscription(row) if row else None

    def slack_subscription_for_channel(self, installation_id: int, channel_id: str) -> SlackSubscription | None:
        row = self.database.one(_SUB_SELECT + " WHERE s.installation_id = ? AND s.channel_id = ?",
                                [installation_id, channel_id])
        return _subscription(row) if row else None

    def slack_subscriptions(self, installation_id: int | None = None) -> list[SlackSubscription]:
        if installation_id is None:
            rows = self.database.query(_SUB_SELECT + " ORDER BY s.id")
        else:
            rows = self.database.query(_SUB_SELECT + " WHERE s.installation_id = ? ORDER BY s.id", [installation_id])
        return [_subscription(r) for r in rows]

    def active_slack_subscriptions(self) -> list[SlackSubscription]:
        rows = self.database.query(_SUB_SELECT + " WHERE s.enabled = 1 AND i.status = 'active' ORDER BY s.id")
        return [_subscription(r) for r in rows]

    def delete_slack_subscription(self, subscription_id: int) -> bool:
        with self.database.transaction() as db:
            db.execute("DELETE FROM slack_notifications_sent WHERE subscription_id = ?", [subscription_id])
            cur = db.execute("DELETE FROM slack_subscriptions WHERE id = ?", [subscription_id])
            return bool(cur.rowcount)

    def update_slack_channel(self, installation_id: int, channel: str, **fields: Any) -> int:
        """Rename, re-id (`channel_id=`), enable or disable the subscription of `channel`; returns rows changed."""
        allowed = {"channel_id", "channel_name", "enabled", "disabled_reason"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update slack subscription fields {sorted(bad)}")
        if not fields:
            return 0
        values = {k: (int(v) if k == "enabled" else v) for k, v in fields.items()}
        sets = "".join(f"{k} = ?, " for k in values)
        with self.database.transaction() as db:
            cur = db.execute(
                f"UPDATE OR IGNORE slack_subscriptions SET {sets}updated_at = ? WHERE installation_id = ? "
                "AND channel_id = ?", [*values.values(), utcnow(), installation_id, channel])
            return cur.rowcount

    def delete_slack_channel(self, installation_id: int, channel_id: str) -> bool:
        sub = self.slack_subscription_for_channel(installation_id, channel_id)
        return self.delete_slack_subscription(sub.id) if sub else False

    # --- the ledger -----------------------------------------------------------------

    def claim_slack_notifications(self, scan_id: int, plans: Iterable[SlackPlan], *,
                                  max_attempts: int = 8) -> list[int]:
        """Claim (subscription, identity) rows and queue one post per subscription in ONE transaction.

        A post carries the identities claimed *by this scan*, so re-running this for the same
        scan recreates nothing and loses nothing. Returns the subscription ids queued now."""
        queued: list[int] = []
        now = utcnow()
        with self.database.transaction() as db:
            conn = db.conn
            for plan in plans:
                alive = conn.execute("SELECT installation_id FROM slack_subscriptions WHERE id = ? AND enabled = 1",
                                     [plan.subscription_id]).fetchone()
                if not alive or not plan.identity_ids:
                    continue
                conn.executemany(
                    "INSERT OR IGNORE INTO slack_notifications_sent (subscription_id, identity_id, scan_id, sent_at) "
                    "VALUES (?, ?, ?, ?)",
                    [(plan.subscription_id, i, scan_id, now) for i in sorted(set(plan.identity_ids))],
                )
                claimed = conn.execute("SELECT 1 FROM slack_notifications_sent WHERE subscription_id = ? "
                                       "AND scan_id = ? LIMIT 1", [plan.subscription_id, scan_id]).fetchone()
                if not claimed:
                    continue
                job = insert_job(db, POST_JOB, {"subscription_id": plan.subscription_id, "scan_id": scan_id},
                                 key=f"slack_post:{plan.subscription_id}:{scan_id}", group=slack_group(alive[0]),
                                 max_attempts=max_attempts)
                if job is not None:
                    queued.append(plan.subscription_id)
        return queued

    def slack_notified_identities(self, subscription_id: int, scan_id: int) -> set[int]:
        rows = self.database.query("SELECT identity_id FROM slack_notifications_sent WHERE subscription_id = ? "
                                   "AND scan_id = ?", [subscription_id, scan_id])
        return {r["identity_id"] for r in rows}

    def is_known_repository(self, full_name: str) -> bool:
        row = self.database.one(
            "SELECT 1 AS ok FROM repositories AS r WHERE r.full_name = ? AND (r.installation_id IS NOT NULL "
            "OR r.connection_id IS NOT NULL OR EXISTS (SELECT 1 FROM scans AS s WHERE s.repository_id = r.id)) LIMIT 1",
            [full_name])
        return row is not None

    def known_repository_names(self, limit: int = 1000) -> list[str]:
        """Repositories forge-app has a scan of or reaches through an installation or connection."""
        rows = self.database.query(
            "SELECT DISTINCT r.full_name FROM repositories AS r WHERE r.installation_id IS NOT NULL "
            "OR r.connection_id IS NOT NULL OR EXISTS (SELECT 1 FROM scans AS s WHERE s.repository_id = r.id) "
            "ORDER BY r.full_name LIMIT ?", [limit])
        return [r["full_name"] for r in rows]


def slack_group(installation_id: int) -> str:
    """Job group of one workspace: its posts go one at a time (Slack's per-workspace limits)."""
    return f"slack:{installation_id}"

"""GitHub Marketplace accounts, repository visibility and customers' user tokens.

What an account's row should become after an event or a sync is decided outside
(forge_app/marketplace/ledger.py); this module only reads and writes rows. User tokens
arrive here already encrypted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from storage.database import Database, utcnow


@dataclass(frozen=True, slots=True)
class MarketplaceAccount:
    account_id: int
    login: str
    type: str | None = None
    state: str = "active"  # active | cancelled
    plan_id: int | None = None
    plan_name: str | None = None
    price_model: str | None = None
    unit_count: int | None = None
    billing_cycle: str | None = None
    on_free_trial: bool = False
    free_trial_ends_on: str | None = None
    next_billing_date: str | None = None
    pending_plan_id: int | None = None
    pending_plan_name: str | None = None
    pending_effective_date: str | None = None
    effective_date: str | None = None  # of the last purchase/change/cancellation applied
    cancelled_at: str | None = None
    purge_after: str | None = None  # the account's data is deleted after this moment
    purged_at: str | None = None


_FIELDS = [f.name for f in fields(MarketplaceAccount)]


def _account(row: Mapping[str, Any]) -> MarketplaceAccount:
    values = {k: row[k] for k in _FIELDS}
    values["on_free_trial"] = bool(values["on_free_trial"])
    return MarketplaceAccount(**values)


class MarketplaceStore:
    database: Database

    # accounts ----------------------------------------------------------------------
    def marketplace_account(self, account_id: int) -> MarketplaceAccount | None:
        row = self.database.one("SELECT * FROM marketplace_accounts WHERE account_id = ?", [account_id])
        return _account(row) if row else None

    def marketplace_account_by_login(self, login: str) -> MarketplaceAccount | None:
        """Logins are case-insensitive on GitHub; the newest row wins if a login was reused."""
        row = self.database.one("SELECT * FROM marketplace_accounts WHERE login_key = ? ORDER BY updated_at DESC "
                                "LIMIT 1", [login.lower()])
        return _account(row) if row else None

    def marketplace_accounts(self) -> list[MarketplaceAccount]:
        return [_account(r) for r in self.database.query("SELECT * FROM marketplace_accounts ORDER BY login_key")]

    def save_marketplace_accounts(self, accounts: Iterable[MarketplaceAccount]) -> int:
        """Upsert whole rows in one transaction (a sync applies all its changes or none)."""
        now = utcnow()
        cols = ", ".join([*_FIELDS, "login_key", "created_at", "updated_at"])
        marks = ", ".join("?" for _ in range(len(_FIELDS) + 3))
        updates = ", ".join(f"{c} = excluded.{c}" for c in [*_FIELDS, "login_key", "updated_at"] if c != "account_id")
        count = 0
        with self.database.transaction() as db:
            for account in accounts:
                values = asdict(account)
                values["on_free_trial"] = int(bool(values["on_free_trial"]))
                db.execute(f"INSERT INTO marketplace_accounts ({cols}) VALUES ({marks}) "
                           f"ON CONFLICT(account_id) DO UPDATE SET {updates}",
                           [*(values[k] for k in _FIELDS), account.login.lower(), now, now])
                count += 1
        return count

    def marketplace_accounts_to_purge(self, now_iso: str) -> list[MarketplaceAccount]:
        return [_account(r) for r in self.database.query(
            "SELECT * FROM marketplace_accounts WHERE state = 'cancelled' AND purge_after IS NOT NULL "
            "AND purge_after <= ? AND purged_at IS NULL ORDER BY account_id", [now_iso])]

    def installation_accounts(self) -> list[dict[str, Any]]:
        """Accounts that installed the GitHub App (login, type), for listing those that never bought."""
        return self.database.query(
            "SELECT account AS login, MAX(account_type) AS type FROM github_installations "
            "WHERE account IS NOT NULL AND deleted = 0 GROUP BY lower(account) ORDER BY lower(account)")

    # what the serving decision reads ----------------------------------------------
    def record_repository_visibility(self, forge: str, visibility: Mapping[str, bool]) -> None:
        if not visibility:
            return
        now = utcnow()
        with self.database.transaction() as db:
            for full_name, private in visibility.items():
                db.execute("INSERT INTO repository_visibility (forge, full_name_key, private, updated_at) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT(forge, full_name_key) DO UPDATE SET "
                           "private = excluded.private, updated_at = excluded.updated_at",
                           [forge, full_name.lower(), int(bool(private)), now])

    def repository_private(self, forge: str, full_name: str) -> bool | None:
        row = self.database.one("SELECT private FROM repository_visibility WHERE forge = ? AND full_name_key = ?",
                                [forge, full_name.lower()])
        return None if row is None else bool(row["private"])

    def owner_repositories_scanned_before(self, forge: str, owner: str, repository_id: int) -> int:
        """How many of the owner's OTHER repositories got their first scan before this one did
        (all that have scans, when this one has none yet)."""
        prefix = owner.lower() + "/"
        row = self.database.one(
            "WITH firsts AS (SELECT s.repository_id AS rid, MIN(s.id) AS first FROM scans s "
            "JOIN repositories r ON r.id = s.repository_id WHERE r.forge = ? "
            "AND lower(substr(r.full_name, 1, ?)) = ? GROUP BY s.repository_id) "
            "SELECT COUNT(*) AS n FROM firsts WHERE rid != ? AND first < "
            "COALESCE((SELECT first FROM firsts WHERE rid = ?), 9223372036854775807)",
            [forge, len(prefix), prefix, repository_id, repository_id])
        return int(row["n"]) if row else 0

    # customers' user tokens ---------------------------------------------------------
    def save_marketplace_user_token(self, account_id: int, user_id: int, user_login: str, token_enc: str) -> None:
        with self.database.transaction() as db:
            db.execute("INSERT INTO marketplace_user_tokens (account_id, user_id, user_login, token_enc, created_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT(account_id, user_id) DO UPDATE SET "
                       "user_login = excluded.user_login, token_enc = excluded.token_enc, "
                       "created_at = excluded.created_at", [account_id, user_id, user_login, token_enc, utcnow()])

    def marketplace_user_tokens(self, account_id: int) -> list[dict[str, Any]]:
        return self.database.query("SELECT user_id, user_login, token_enc FROM marketplace_user_tokens "
                                   "WHERE account_id = ? ORDER BY user_id", [account_id])

    def drop_marketplace_user_token(self, account_id: int, user_id: int) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM marketplace_user_tokens WHERE account_id = ? AND user_id = ?",
                       [account_id, user_id])

    # retention ------------------------------------------------------------------------
    def purge_owner_data(self, forge: str, owner: str) -> int:
        """Delete the scans, findings and review state of every repository of `owner` (the
        repositories and their upload tokens stay, so CI keeps working after a new purchase).
        Returns the number of scans deleted."""
        prefix = owner.lower() + "/"
        with self.database.transaction() as db:
            repo_ids = [r["id"] for r in self.database.query(
                "SELECT id FROM repositories WHERE forge = ? AND lower(substr(full_name, 1, ?)) = ?",
                [forge, len(prefix), prefix])]
            if not repo_ids:
                return 0
            repos = ",".join("?" for _ in repo_ids)
            scans = f"SELECT id FROM scans WHERE repository_id IN ({repos})"
            identities = f"SELECT id FROM identities WHERE repository_id IN ({repos})"
            tables = {t["name"]: {c["name"] for c in self.database.query(f"PRAGMA table_info('{t['name']}')")}
                      for t in self.database.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
            n = self.database.one(f"SELECT COUNT(*) AS n FROM scans WHERE repository_id IN ({repos})", repo_ids)
            # Rows that point at a scan or an identity go first (foreign keys), whoever's table they are in.
            for table, cols in sorted(tables.items()):
                if table in ("scans", "identities"):
                    continue
                if "scan_id" in cols:
                    db.execute(f"DELETE FROM {table} WHERE scan_id IN ({scans})", repo_ids)
                if "identity_id" in cols:
                    db.execute(f"DELETE FROM {table} WHERE identity_id IN ({identities})", repo_ids)
            for table in ("review_comments", "forge_objects", "github_pull_requests"):
                if table in tables:
                    db.execute(f"DELETE FROM {table} WHERE repository_id IN ({repos})", repo_ids)
            db.execute(f"UPDATE scans SET base_scan_id = NULL WHERE base_scan_id IN ({scans})", repo_ids)
            db.execute(f"DELETE FROM scans WHERE repository_id IN ({repos})", repo_ids)
            db.execute(f"DELETE FROM identities WHERE repository_id IN ({repos})", repo_ids)
        return int(n["n"]) if n else 0

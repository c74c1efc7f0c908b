"""Notification integrations, the once-only ledger, and outbound deliveries.

The ledger (`notifications_sent`, one row per integration and finding identity) is
what makes a finding go to an integration once: rows are claimed in the same
transaction that creates the delivery rows and their jobs, so a crash can neither
send twice nor lose a delivery. (`record_delivery` in `deliveries.py` is about
*inbound* webhooks; everything here is outbound.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database, utcnow
from storage.jobs import insert_job

FINDING_KINDS = frozenset({"findings", "slack", "email"})
"""Delivery kinds that carry findings: only created when at least one finding is claimed."""

DELIVERY_STATUSES = ("pending", "retrying", "succeeded", "failed")
_UPDATABLE = {"name", "config", "secret", "filters", "enabled"}


@dataclass(frozen=True, slots=True)
class Integration:
    id: int
    type: str  # webhook | slack | email
    name: str
    config: dict[str, Any]  # url / addresses / events
    secret: str | None  # as stored (sealed); never returned by the API
    filters: dict[str, Any]
    enabled: bool
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class NotificationDelivery:
    id: int
    integration_id: int
    scan_id: int | None
    kind: str  # scan | findings | slack | email | test
    status: str  # pending | retrying | succeeded | failed
    status_code: int | None
    attempts: int
    latency_ms: int | None
    error: str | None
    webhook_id: str | None
    created_at: str
    updated_at: str
    last_attempt_at: str | None
    next_attempt_at: str | None
    parts_sent: int = 0  # parts of a batched findings webhook already accepted


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    """What a notification says about a finding's identity across scans."""

    fingerprint: str
    first_seen_scan_id: int | None
    created_at: str | None


@dataclass(slots=True)
class PlannedDelivery:
    kind: str
    webhook_id: str


@dataclass(slots=True)
class NotificationPlan:
    """For one integration and one scan: the identities it may get, and what to send."""

    integration_id: int
    identity_ids: list[int] = field(default_factory=list)
    deliveries: list[PlannedDelivery] = field(default_factory=list)


def _integration(row: dict[str, Any]) -> Integration:
    return Integration(
        id=row["id"], type=row["type"], name=row["name"], config=json.loads(row["config"] or "{}"),
        secret=row["secret"], filters=json.loads(row["filters"] or "{}"), enabled=bool(row["enabled"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _delivery(row: dict[str, Any]) -> NotificationDelivery:
    return NotificationDelivery(
        id=row["id"], integration_id=row["integration_id"], scan_id=row["scan_id"], kind=row["kind"],
        status=row["status"], status_code=row["status_code"], attempts=row["attempts"] or 0,
        latency_ms=row["latency_ms"], error=row["error"], webhook_id=row["webhook_id"],
        created_at=row["created_at"], updated_at=row["updated_at"], last_attempt_at=row["last_attempt_at"],
        next_attempt_at=row["next_attempt_at"], parts_sent=row.get("parts_sent") or 0,
    )


class IntegrationStore:
    database: Database

    # --- integrations -------------------------------------------------------------

    def create_integration(
        self, type: str, name: str, config: dict[str, Any], secret: str | None, filters: dict[str, Any],
        enabled: bool = True,
    ) -> Integration:
        now = utcnow()
        with self.database.transaction() as db:
            cur = db.execute(
                "INSERT INTO integrations (type, name, config, secret, filters, enabled, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [type, name, json.dumps(config), secret, json.dumps(filters), int(enabled), now, now],
            )
            integration_id = int(cur.lastrowid)
        found = self.integration(integration_id)
        assert found is not None
        return found

    def integration(self, integration_id: int) -> Integration | None:
        row = self.database.one("SELECT * FROM integrations WHERE id = ?", [integration_id])
        return _integration(row) if row else None

    def list_integrations(self) -> list[Integration]:
        return [_integration(r) for r in self.database.query("SELECT * FROM integrations ORDER BY id")]

    def enabled_integrations(self) -> list[Integration]:
        rows = self.database.query("SELECT * FROM integrations WHERE enabled = 1 ORDER BY id")
        return [_integration(r) for r in rows]

    def update_integration(self, integration_id: int, **fields: Any) -> Integration | None:
        """Change some of name, config, secret, filters, enabled; None when the id is unknown."""
        bad = set(fields) - _UPDATABLE
        if bad:
            raise ValueError(f"cannot update integration fields {sorted(bad)}")
        values = {k: (json.dumps(v) if k in ("config", "filters") else int(v) if k == "enabled" else v)
                  for k, v in fields.items()}
        with self.database.transaction() as db:
            sets = "".join(f"{k} = ?, " for k in values)
            cur = db.execute(f"UPDATE integrations SET {sets}updated_at = ? WHERE id = ?",
                             [*values.values(), utcnow(), integration_id])
            if cur.rowcount == 0:
                return None
        return self.integration(integration_id)

    def delete_integration(self, integration_id: int) -> bool:
        """Remove the integration with its ledger and deliveries, and cancel its queued jobs."""
        with self.database.transaction() as db:
            cur = db.execute("DELETE FROM integrations WHERE id = ?", [integration_id])
            if cur.rowcount == 0:
                return False
            db.execute("DELETE FROM notifications_sent WHERE integration_id = ?", [integration_id])
            db.execute("DELETE FROM notification_deliveries WHERE integration_id = ?", [integration_id])
            db.execute(
                "UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE group_key = ? AND status = 'queued'",
                [utcnow(), _job_group(integration_id)],
            )
        return True

    # --- the ledger -----------------------------------------------------------------

    def claim_notifications(
        self, scan_id: int, plans: Iterable[NotificationPlan], *, job_kind: str, max_attempts: int,
    ) -> list[int]:
        """Claim ledger rows and create deliveries plus their jobs in ONE transaction.

        For each plan, the identities not yet in the integration's ledger are claimed for
        this scan; the findings of a delivery are all identities claimed *by this scan*,
        so running this again for the same scan (a retried job) recreates nothing and
        loses nothing. Finding-carrying kinds are skipped when nothing was claimed.
        Returns the ids of the deliveries created now.
        """
        created: list[int] = []
        now = utcnow()
        with self.database.transaction() as db:
            conn = db.conn
            for plan in plans:
                alive = conn.execute("SELECT 1 FROM integrations WHERE id = ? AND enabled = 1",
                                     [plan.integration_id]).fetchone()
                if not alive:
                    continue
                kinds = {d.kind for d in plan.deliveries}
                has_findings = False
                if kinds & FINDING_KINDS:
                    conn.executemany(
                        "INSERT OR IGNORE INTO notifications_sent (integration_id, identity_id, scan_id, sent_at) "
                        "VALUES (?, ?, ?, ?)",
                        [(plan.integration_id, ident, scan_id, now) for ident in sorted(set(plan.identity_ids))],
                    )
                    has_findings = conn.execute(
                        "SELECT 1 FROM notifications_sent WHERE integration_id = ? AND scan_id = ? LIMIT 1",
                        [plan.integration_id, scan_id],
                    ).fetchone() is not None
                for planned in plan.deliveries:
                    if planned.kind in FINDING_KINDS and not has_findings:
                        continue
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO notification_deliveries (integration_id, scan_id, kind, status, "
                        "attempts, webhook_id, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
                        [plan.integration_id, scan_id, planned.kind, planned.webhook_id, now, now],
                    )
                    if not cur.rowcount:
                        continue
                    delivery_id = int(cur.lastrowid)
                    job_id = insert_job(
                        db, job_kind, {"delivery_id": delivery_id},
                        key=f"notify:{plan.integration_id}:{scan_id}:{planned.kind}",
                        group=_job_group(plan.integration_id), max_attempts=max_attempts,
                    )
                    conn.execute("UPDATE notification_deliveries SET job_id = ? WHERE id = ?", [job_id, delivery_id])
                    created.append(delivery_id)
        return created

    def notified_identities(self, integration_id: int, scan_id: int) -> set[int]:
        """The identities this scan claimed for this integration: what its deliveries carry."""
        rows = self.database.query(
            "SELECT identity_id FROM notifications_sent WHERE integration_id = ? AND scan_id = ?",
            [integration_id, scan_id],
        )
        return {r["identity_id"] for r in rows}

    def identity_details(self, identity_ids: Iterable[int]) -> dict[int, IdentityInfo]:
        ids = sorted(set(identity_ids))
        out: dict[int, IdentityInfo] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for row in self.database.query(
                "SELECT id, fingerprint, first_seen_scan_id, created_at FROM identities "
                f"WHERE id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ):
                out[row["id"]] = IdentityInfo(row["fingerprint"], row["first_seen_scan_id"], row["created_at"])
        return out

    # --- deliveries -----------------------------------------------------------------

    def add_notification_delivery(self, integration_id: int, kind: str, webhook_id: str | None,
                                  scan_id: int | None = None) -> int:
        """A delivery made outside the fan-out (the `test` button)."""
        now = utcnow()
        with self.database.transaction() as db:
            cur = db.execute(
                "INSERT INTO notification_deliveries (integration_id, scan_id, kind, status, attempts, webhook_id, "
                "created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
                [integration_id, scan_id, kind, webhook_id, now, now],
            )
            return int(cur.lastrowid)

    def notification_delivery(self, delivery_id: int) -> NotificationDelivery | None:
        row = self.database.one("SELECT * FROM notification_deliveries WHERE id = ?", [delivery_id])
        return _delivery(row) if row else None

    def record_delivery_attempt(
        self, delivery_id: int, *, status: str, status_code: int | None, latency_ms: int | None,
        error: str | None, next_attempt_at: str | None = None,
    ) -> None:
        """One attempt happened: count it and keep its outcome on the delivery row."""
        if status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {status!r}")
        now = utcnow()
        with self.database.transaction() as db:
            db.execute(
                "UPDATE notification_deliveries SET status = ?, status_code = ?, latency_ms = ?, error = ?, "
                "attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                [status, status_code, latency_ms, error, now, next_attempt_at, now, delivery_id],
            )

    def record_delivery_parts(self, delivery_id: int, parts_sent: int) -> None:
        """A batched delivery's progress: its first `parts_sent` parts were accepted."""
        with self.database.transaction() as db:
            db.execute("UPDATE notification_deliveries SET parts_sent = ?, updated_at = ? WHERE id = ?",
                       [parts_sent, utcnow(), delivery_id])

    def close_notification_delivery(self, delivery_id: int, error: str) -> None:
        """Fail a delivery without an attempt (its integration went away or was disabled)."""
        with self.database.transaction() as db:
            db.execute(
                "UPDATE notification_deliveries SET status = 'failed', error = ?, next_attempt_at = NULL, "
                "updated_at = ? WHERE id = ?",
                [error, utcnow(), delivery_id],
            )

    def recent_notification_deliveries(self, integration_id: int, limit: int = 100) -> list[NotificationDelivery]:
        rows = self.database.query(
            "SELECT * FROM notification_deliveries WHERE integration_id = ? ORDER BY id DESC LIMIT ?",
            [integration_id, max(1, min(limit, 100))],
        )
        return [_delivery(r) for r in rows]


def _job_group(integration_id: int) -> str:
    return f"integration:{integration_id}"

"""Outbound notification deliveries, and indexes for the integrations and their ledger.

`integrations` and `notifications_sent` (the once-only ledger) come from 0001. A
delivery row is what an admin sees in `GET /api/v1/integrations/{id}/deliveries`;
its unique (integration, scan, kind) makes queuing the same delivery twice a no-op.
"""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["notification_deliveries"].create(
        {"id": int, "integration_id": int, "scan_id": int, "kind": str, "status": str,
         "status_code": int, "attempts": int, "latency_ms": int, "error": str, "webhook_id": str,
         "job_id": int, "created_at": str, "updated_at": str, "last_attempt_at": str,
         "next_attempt_at": str},
        pk="id", not_null={"integration_id", "kind", "status"},
    )
    # One delivery per (integration, scan, kind); test deliveries have no scan (NULLs never collide).
    db["notification_deliveries"].create_index(["integration_id", "scan_id", "kind"], unique=True)
    db["notification_deliveries"].create_index(["integration_id", "id"])
    db["notifications_sent"].create_index(["integration_id", "scan_id"])
    db["integrations"].create_index(["enabled"])

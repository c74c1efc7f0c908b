"""Webhook deliveries seen, so a redelivery is acknowledged but not processed twice."""

from __future__ import annotations

import sqlite3
from typing import Any

from storage.database import Database, utcnow
from storage.jobs import insert_job


class DeliveryStore:
    database: Database

    def accept_delivery(
        self, source: str, delivery_id: str, event: str, *, kind: str, payload: dict[str, Any],
        group: str | None = None,
    ) -> bool:
        """Record a webhook delivery and queue its processing in ONE transaction, so the
        webhook can be answered at once without losing it. False for a redelivery."""
        try:
            with self.database.transaction() as db:
                db.execute(
                    "INSERT INTO deliveries (source, delivery_id, event, received_at) VALUES (?, ?, ?, ?)",
                    [source, delivery_id, event, utcnow()],
                )
                insert_job(db, kind, payload, key=f"{source}:{delivery_id}", group=group)
        except sqlite3.IntegrityError:
            return False
        return True

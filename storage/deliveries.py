"""Webhook deliveries seen, so a redelivery is acknowledged but not processed twice.

Receivers use `accept_delivery_async`: the delivery row and its job are written by the
group-commit writer (storage/writer.py), so the answer waits for a durable commit
but never for another thread's write lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import sqlite_utils

from storage.database import Database, utcnow
from storage.jobs import insert_job
from storage.writer import GroupWriter


def _record(db: sqlite_utils.Database, source: str, delivery_id: str, event: str, kind: str,
            payload: dict[str, Any], group: str | None) -> bool:
    cur = db.conn.execute(
        "INSERT OR IGNORE INTO deliveries (source, delivery_id, event, received_at) VALUES (?, ?, ?, ?)",
        [source, delivery_id, event, utcnow()])
    if cur.rowcount != 1:
        return False  # a redelivery: seen before
    insert_job(db, kind, payload, key=f"{source}:{delivery_id}", group=group)
    return True


class DeliveryStore:
    database: Database
    _intake: GroupWriter | None = None

    def intake_writer(self) -> GroupWriter | None:
        """The group-commit writer (None for an in-memory database, which one connection owns)."""
        if self.database.path == ":memory:":
            return None
        if self._intake is None:
            self._intake = GroupWriter(self.database.path)
        return self._intake

    def submit_delivery(
        self, source: str, delivery_id: str, event: str, *, kind: str, payload: dict[str, Any],
        group: str | None = None,
    ) -> concurrent.futures.Future[bool]:
        """Queue the delivery for the next group commit; the future says accepted (True) or redelivery."""
        writer = self.intake_writer()
        if writer is None:
            done: concurrent.futures.Future[bool] = concurrent.futures.Future()
            done.set_result(self.accept_delivery(source, delivery_id, event, kind=kind, payload=payload, group=group))
            return done
        return writer.submit(lambda db: _record(db, source, delivery_id, event, kind, payload, group))

    async def accept_delivery_async(
        self, source: str, delivery_id: str, event: str, *, kind: str, payload: dict[str, Any],
        group: str | None = None,
    ) -> bool:
        """`accept_delivery` for the event loop: answered once committed durably, never blocking the loop."""
        writer = self.intake_writer()
        if writer is None:
            return await asyncio.to_thread(self.accept_delivery, source, delivery_id, event, kind=kind,
                                           payload=payload, group=group)
        return bool(await writer.run(lambda db: _record(db, source, delivery_id, event, kind, payload, group)))

    async def sync_intake(self) -> None:
        """Wait for an fsync'ed commit: everything written before (e.g. an upload) is then power-loss durable."""
        writer = self.intake_writer()
        if writer is not None:
            await writer.run(lambda db: None)

    def close_intake(self) -> None:
        if self._intake is not None:
            self._intake.close()
            self._intake = None

    def accept_delivery(
        self, source: str, delivery_id: str, event: str, *, kind: str, payload: dict[str, Any],
        group: str | None = None,
    ) -> bool:
        """Record a webhook delivery and queue its processing in ONE transaction, so the
        webhook can be answered at once without losing it. False for a redelivery."""
        with self.database.transaction() as db:
            accepted = _record(db, source, delivery_id, event, kind, payload, group)
            if not accepted:
                return False
        return True

    def delivery_counts(self, source: str, job_keys: list[str] | None = None) -> dict[str, int]:
        """For benchmarks and checks: delivery rows and their jobs (and how many of `job_keys` exist)."""
        deliveries = self.database.one("SELECT COUNT(*) AS n FROM deliveries WHERE source = ?", [source])
        jobs = self.database.one("SELECT COUNT(*) AS n FROM jobs WHERE idempotency_key LIKE ?", [f"{source}:%"])
        matched = 0
        keys = list(job_keys or [])
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            row = self.database.one(
                f"SELECT COUNT(*) AS n FROM jobs WHERE idempotency_key IN ({','.join('?' * len(chunk))})", chunk)
            matched += int(row["n"]) if row else 0
        return {"deliveries": int(deliveries["n"]) if deliveries else 0, "jobs": int(jobs["n"]) if jobs else 0,
                "matched_jobs": matched}

"""Webhook deliveries seen, so a redelivery is acknowledged but not processed twice.

Receivers use `accept_delivery_async`: the delivery row and its job are written by the
group-commit writer (storage/writer.py), so the answer waits for a durable commit
but never for another thread's write lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.database import Database, utcnow
from storage.jobs import DEFAULT_MAX_ATTEMPTS, insert_job, job_payload
from storage.writer import GroupWriter


@dataclass(frozen=True, slots=True)
class DeliveryWrite:
    """One delivery for the group-commit writer: alone it is `_record`; a run of them is written
    by `record_deliveries` in a handful of statements."""

    source: str
    delivery_id: str
    event: str
    kind: str
    payload: dict[str, Any]
    group: str | None

    def __call__(self, db: sqlite_utils.Database) -> bool:
        return _record(db, self.source, self.delivery_id, self.event, self.kind, self.payload, self.group)

    @staticmethod
    def bulk(db: sqlite_utils.Database, writes: list[DeliveryWrite]) -> list[bool]:
        return record_deliveries(db, writes)


_ROWS_PER_STATEMENT = 90  # 10 values per job row: under SQLite's historical 999-parameter limit


def record_deliveries(db: sqlite_utils.Database, writes: list[DeliveryWrite]) -> list[bool]:
    """Record many deliveries and their jobs inside the caller's (write-locked) transaction:
    one SELECT for the ids already seen, then multi-row INSERTs. Row by row this was ~130
    statements per batch of 64, and each statement hands Python's GIL to the web loop and
    waits to get it back; now it is 3 or 4. True per new delivery, False per redelivery
    (seen before, or earlier in the same batch)."""
    seen: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for w in writes:
        by_source.setdefault(w.source, []).append(w.delivery_id)
    for source, ids in by_source.items():
        for chunk in _chunks(sorted(set(ids)), 900):
            rows = db.conn.execute(
                f"SELECT delivery_id FROM deliveries WHERE source = ? AND delivery_id IN ({_marks(len(chunk))})",
                [source, *chunk])
            seen.update((source, r[0]) for r in rows)
    accepted: list[bool] = []
    fresh: list[DeliveryWrite] = []
    for w in writes:
        key = (w.source, w.delivery_id)
        accepted.append(key not in seen)
        if key not in seen:
            seen.add(key)
            fresh.append(w)
    now, at = utcnow(), time.time()
    for chunk in _chunks(fresh, _ROWS_PER_STATEMENT):
        db.conn.execute(
            "INSERT INTO deliveries (source, delivery_id, event, received_at) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
            [v for w in chunk for v in (w.source, w.delivery_id, w.event, now)])
        db.conn.execute(
            "INSERT INTO jobs (kind, payload, idempotency_key, group_key, status, attempts, max_attempts, run_at, "
            "created_at, updated_at) VALUES " + ", ".join(["(?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)"] * len(chunk))
            + " ON CONFLICT DO NOTHING",
            [v for w in chunk for v in (w.kind, job_payload(w.payload), f"{w.source}:{w.delivery_id}", w.group,
                                        DEFAULT_MAX_ATTEMPTS, at, now, now)])
    return accepted


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


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
        return writer.submit(DeliveryWrite(source, delivery_id, event, kind, payload, group))

    async def accept_delivery_async(
        self, source: str, delivery_id: str, event: str, *, kind: str, payload: dict[str, Any],
        group: str | None = None,
    ) -> bool:
        """`accept_delivery` for the event loop: answered once committed durably, never blocking the loop."""
        writer = self.intake_writer()
        if writer is None:
            return await asyncio.to_thread(self.accept_delivery, source, delivery_id, event, kind=kind,
                                           payload=payload, group=group)
        return bool(await writer.run(DeliveryWrite(source, delivery_id, event, kind, payload, group)))

    async def sync_intake(self) -> None:
        """Wait for an fsync'ed commit: everything written before (e.g. an upload) is then power-loss durable."""
        writer = self.intake_writer()
        if writer is not None:
            await writer.run(lambda db: None)

    def intake_busy(self, within: float = 0.2) -> bool:
        """Something (deliveries, uploads) was committed through the intake writer within the last
        `within` seconds: the job worker of this process then makes way (forge_app/jobs/worker.py)."""
        writer = self._intake
        return writer is not None and time.monotonic() - writer.last_commit < within

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

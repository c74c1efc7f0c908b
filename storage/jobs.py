"""The durable job table: work survives crashes, idempotency keys stop duplicates.

A job is claimed with a lease; a worker that dies mid-job loses the lease and the
job is claimed again. Handlers must therefore be idempotent (they check what was
already done before acting), and the key makes enqueueing the same work twice a no-op.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from storage.database import Database, utcnow
from storage.records import Job

LEASE_SECONDS = 300.0


def insert_job(
    db: sqlite_utils.Database, kind: str, payload: dict[str, Any], *, key: str | None = None,
    group: str | None = None, run_at: float | None = None, max_attempts: int = 12,
) -> int | None:
    """Insert inside the caller's transaction; a duplicate key returns None and changes nothing."""
    cur = db.conn.execute(
        "INSERT OR IGNORE INTO jobs (kind, payload, idempotency_key, group_key, status, attempts, max_attempts, "
        "run_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
        [kind, json.dumps(payload), key, group, max_attempts, run_at if run_at is not None else time.time(),
         utcnow(), utcnow()],
    )
    return int(cur.lastrowid) if cur.rowcount else None


def _job(row: dict[str, Any]) -> Job:
    return Job(id=row["id"], kind=row["kind"], payload=json.loads(row["payload"]), key=row["idempotency_key"],
               group=row["group_key"], attempts=row["attempts"], max_attempts=row["max_attempts"])


class JobStore:
    database: Database

    def enqueue_job(
        self, kind: str, payload: dict[str, Any], *, key: str | None = None, group: str | None = None,
        run_at: float | None = None, max_attempts: int = 12,
    ) -> int | None:
        with self.database.transaction() as db:
            return insert_job(db, kind, payload, key=key, group=group, run_at=run_at, max_attempts=max_attempts)

    def claim_job(self, worker_id: str, *, now: float | None = None, lease: float = LEASE_SECONDS) -> Job | None:
        now = time.time() if now is None else now
        with self.database.transaction() as db:
            # Jobs of one group (a repository's publishing, an installation's events) run one at a
            # time: two workers publishing the same PR at once would both post.
            row = self.database.one(
                "SELECT * FROM jobs AS j WHERE ((j.status = 'queued' AND j.run_at <= ?) "
                "OR (j.status = 'running' AND j.locked_until < ?)) "
                "AND (j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.group_key = j.group_key "
                "AND o.id != j.id AND o.status = 'running' AND o.locked_until >= ?)) "
                "ORDER BY j.run_at, j.id LIMIT 1",
                [now, now, now],
            )
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE id = ?",
                [worker_id, now + lease, utcnow(), row["id"]],
            )
            row["attempts"] += 1
        return _job(row)

    def complete_job(self, job_id: int) -> None:
        self._set(job_id, "done", None, None)

    def retry_job(self, job_id: int, run_at: float, error: str) -> None:
        self._set(job_id, "queued", run_at, error)

    def fail_job(self, job_id: int, error: str) -> None:
        self._set(job_id, "failed", None, error)

    def _set(self, job_id: int, status: str, run_at: float | None, error: str | None) -> None:
        with self.database.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, run_at = COALESCE(?, run_at), last_error = ?, locked_by = NULL, "
                "locked_until = NULL, updated_at = ? WHERE id = ?",
                [status, run_at, error, utcnow(), job_id],
            )

    def cancel_jobs(self, group: str) -> int:
        """Cancel pending work of a group (e.g. an uninstalled GitHub installation)."""
        with self.database.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE group_key = ? AND status = 'queued'",
                [utcnow(), group],
            )
            return cur.rowcount

    def next_job_at(self) -> float | None:
        row = self.database.one("SELECT MIN(run_at) AS t FROM jobs WHERE status = 'queued'")
        return row["t"] if row else None

    def jobs(self, *, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """For tests and operators: the job rows, newest last."""
        sql, params = "SELECT * FROM jobs WHERE 1 = 1", []
        if kind:
            sql, params = sql + " AND kind = ?", params + [kind]
        if status:
            sql, params = sql + " AND status = ?", params + [status]
        rows = self.database.query(sql + " ORDER BY id", params)
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def count_jobs(self, status: str) -> int:
        row = self.database.one("SELECT COUNT(*) AS n FROM jobs WHERE status = ?", [status])
        return int(row["n"]) if row else 0

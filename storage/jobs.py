"""The durable job table: work survives crashes, idempotency keys stop duplicates.

A job is claimed with a short lease that the running worker renews (a heartbeat); a
worker that dies mid-job stops renewing, and within LEASE_SECONDS the job is claimed
again. Handlers must therefore be idempotent (they check what was already done before
acting), and the key makes enqueueing the same work twice a no-op.

The claim is two index walks (migration 0010's partial indexes), never a sort of the
backlog, so it costs the same with 0 or 100,000 jobs queued.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import sqlite_utils

from storage.database import Database, utcnow
from storage.records import Job

LEASE_SECONDS = 20.0
HEARTBEAT_SECONDS = 5.0
# What the API calls a job's state, and the status column behind it.
STATES = {"queued": "queued", "running": "running", "dead": "failed", "done": "done", "cancelled": "cancelled"}


DEFAULT_MAX_ATTEMPTS = 12


def job_payload(payload: dict[str, Any]) -> str:
    """orjson: intake writes one per delivery, and it is several times faster than json."""
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()


def insert_job(
    db: sqlite_utils.Database, kind: str, payload: dict[str, Any], *, key: str | None = None,
    group: str | None = None, run_at: float | None = None, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int | None:
    """Insert inside the caller's transaction; a duplicate key returns None and changes nothing."""
    now = utcnow()
    cur = db.conn.execute(
        "INSERT OR IGNORE INTO jobs (kind, payload, idempotency_key, group_key, status, attempts, max_attempts, "
        "run_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
        [kind, job_payload(payload), key, group, max_attempts, run_at if run_at is not None else time.time(), now, now],
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
        # Jobs of one group (a repository's publishing, an installation's events) run one at a
        # time: two workers publishing the same PR at once would both post.
        free_group = ("(j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.status = 'running' "
                      "AND o.group_key = j.group_key AND o.id != j.id AND o.locked_until >= ?))")
        with self.database.transaction() as db:
            # First a job whose worker died (its lease ran out), then the oldest due one; each
            # query walks one partial index in order and stops at the first free group.
            row = self.database.one(
                f"SELECT * FROM jobs AS j WHERE j.status = 'running' AND j.locked_until < ? AND {free_group} "
                "ORDER BY j.locked_until LIMIT 1", [now, now])
            if row is None:
                row = self.database.one(
                    f"SELECT * FROM jobs AS j WHERE j.status = 'queued' AND j.run_at <= ? AND {free_group} "
                    "ORDER BY j.run_at, j.id LIMIT 1", [now, now])
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE id = ?",
                [worker_id, now + lease, utcnow(), row["id"]],
            )
            row["attempts"] += 1
        return _job(row)

    def heartbeat_job(self, job_id: int, worker_id: str, *, lease: float = LEASE_SECONDS) -> bool:
        """Renew the lease of a job this worker runs; False when it lost the lease meanwhile."""
        with self.database.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET locked_until = ? WHERE id = ? AND locked_by = ? AND status = 'running'",
                [time.time() + lease, job_id, worker_id])
            return cur.rowcount == 1

    def running_leases(self) -> list[tuple[int, str]]:
        """(job id, worker id) of every running job: a starting worker looks for dead holders."""
        return [(int(r["id"]), str(r["locked_by"])) for r in self.database.query(
            "SELECT id, locked_by FROM jobs WHERE status = 'running' AND locked_by IS NOT NULL")]

    def expire_lease(self, job_id: int, worker_id: str) -> bool:
        """End the lease of a job whose worker is known dead, so it is claimed at once."""
        with self.database.transaction() as db:
            cur = db.execute("UPDATE jobs SET locked_until = 0 WHERE id = ? AND locked_by = ? AND status = 'running'",
                             [job_id, worker_id])
            return cur.rowcount == 1

    def release_job(self, job_id: int, worker_id: str) -> bool:
        """Give a job back unfinished (shutdown): due now, and the interrupted attempt not counted."""
        with self.database.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status = 'queued', run_at = ?, attempts = MAX(0, attempts - 1), locked_by = NULL, "
                "locked_until = NULL, updated_at = ? WHERE id = ? AND locked_by = ? AND status = 'running'",
                [time.time(), utcnow(), job_id, worker_id])
            return cur.rowcount == 1

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

    def list_jobs(self, state: str, *, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        """Jobs in an API state (`queued`, `running`, `dead`, ...), newest first, for operators."""
        sql = ("SELECT id, kind, group_key, status, attempts, max_attempts, last_error, run_at, locked_by, "
               "locked_until, created_at, updated_at FROM jobs WHERE status = ?")
        params: list[Any] = [STATES[state]]
        if before_id is not None:
            sql, params = sql + " AND id < ?", params + [before_id]
        return self.database.query(sql + " ORDER BY id DESC LIMIT ?", params + [limit])

    def job(self, job_id: int) -> dict[str, Any] | None:
        return self.database.one("SELECT * FROM jobs WHERE id = ?", [job_id])

    def requeue_job(self, job_id: int) -> str | None:
        """Run a dead, cancelled or waiting job again now, with fresh attempts.

        Returns the status it had (None: no such job); a running or done job is left alone."""
        with self.database.transaction() as db:
            row = self.database.one("SELECT status FROM jobs WHERE id = ?", [job_id])
            if row is None:
                return None
            if row["status"] in ("failed", "cancelled", "queued"):
                db.execute(
                    "UPDATE jobs SET status = 'queued', run_at = ?, attempts = 0, locked_by = NULL, "
                    "locked_until = NULL, updated_at = ? WHERE id = ?", [time.time(), utcnow(), job_id])
            return str(row["status"])

    def job_state_counts(self) -> dict[str, int]:
        """queued / running / dead, for the `forge_app_jobs` gauge."""
        rows = self.database.query(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running', 'failed') GROUP BY status")
        found = {r["status"]: int(r["n"]) for r in rows}
        return {state: found.get(status, 0) for state, status in STATES.items() if status in
                ("queued", "running", "failed")}

    def prune_finished(self, older_than: str, *, batch: int = 500) -> int:
        """Delete up to `batch` done/cancelled jobs, deliveries and notification records last
        touched before `older_than` (ISO UTC), in short transactions; returns rows deleted."""
        deleted = 0
        statements = [
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status IN ('done', 'cancelled') "
            "AND updated_at < ? LIMIT ?)",
            "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries WHERE received_at < ? LIMIT ?)",
        ]
        if self.database.one("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'notification_deliveries'"):
            statements.append("DELETE FROM notification_deliveries WHERE rowid IN (SELECT rowid FROM "
                              "notification_deliveries WHERE status IN ('succeeded', 'failed') "
                              "AND updated_at < ? LIMIT ?)")
        for sql in statements:
            with self.database.transaction() as db:
                deleted += db.execute(sql, [older_than, batch]).rowcount
        return deleted

    def count_jobs(self, status: str) -> int:
        row = self.database.one("SELECT COUNT(*) AS n FROM jobs WHERE status = ?", [status])
        return int(row["n"]) if row else 0

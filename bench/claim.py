"""Benchmark: the cost of claiming a job with 0, 1k, 10k and 100k jobs queued.

The claim walks an index in (run_at, id) order and stops at the first job whose group
is free, so it should cost the same whatever the backlog. Each size also measures a
backlog whose oldest 1,000 jobs wait behind a busy group (they must be skipped), and,
as the baseline in the same run, the pre-#10 claim query (one OR over both states,
sorted) on the same data.

    .venv/bin/python bench/claim.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import open_storage

OLD_CLAIM = (  # the query before issue #10, for the baseline
    "SELECT * FROM jobs AS j WHERE ((j.status = 'queued' AND j.run_at <= ?) "
    "OR (j.status = 'running' AND j.locked_until < ?)) "
    "AND (j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.group_key = j.group_key "
    "AND o.id != j.id AND o.status = 'running' AND o.locked_until >= ?)) "
    "ORDER BY j.run_at, j.id LIMIT 1")


def fill(storage, n: int) -> None:
    now = time.time() - 10
    with storage.database.transaction() as db:
        db.conn.executemany(
            "INSERT INTO jobs (kind, payload, idempotency_key, group_key, status, attempts, max_attempts, run_at, "
            "created_at, updated_at) VALUES ('k', '{}', ?, ?, 'queued', 0, 12, ?, 'x', 'x')",
            [(f"j{i}", f"repo:{i % 500}" if i >= 1000 else "busy", now + i * 1e-6) for i in range(n)])


def timed_claims(storage, rounds: int = 200) -> float:
    """Median ms of claim + give back (so the backlog stays the same)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        job = storage.claim_job("bench")
        times.append((time.perf_counter() - started) * 1000)
        if job is not None:
            storage.release_job(job.id, "bench")
    return statistics.median(times)


def old_claim(storage, rounds: int = 20) -> float:
    times = []
    for _ in range(rounds):
        now = time.time()
        started = time.perf_counter()
        with storage.database.transaction():
            storage.database.one(OLD_CLAIM, [now, now, now])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    print(f"{'queued jobs':>12} {'claim (ms, median)':>20} {'behind a busy group':>21} {'old query (ms)':>16}")
    for n in (0, 1_000, 10_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            storage = open_storage(str(Path(tmp) / "claim.db"))
            fill(storage, n)
            free = timed_claims(storage)
            busy = float("nan")
            if n:
                storage.database.db.execute(
                    "UPDATE jobs SET status = 'running', locked_by = 'other', locked_until = ? "
                    "WHERE idempotency_key = 'j0'", [time.time() + 3600])
                storage.database.db.conn.commit()
                busy = timed_claims(storage)
            old = old_claim(storage)
            storage.close()
        print(f"{n:>12,} {free:>20.3f} {busy:>21.3f} {old:>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

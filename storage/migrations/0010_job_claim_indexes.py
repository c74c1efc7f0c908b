"""Indexes that match the job claim and the retention pruning exactly.

The claim walks the 0001 index (status, run_at) for queued jobs (in run_at, id order)
or `jobs_leased` (status, locked_until) for jobs whose lease ran out and stops at the first job
whose group is free, checked through `jobs_running_group`; nothing sorts the backlog, so claiming
costs the same at any size.
"""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db.execute("CREATE INDEX IF NOT EXISTS jobs_leased ON jobs (status, locked_until)")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_running_group ON jobs (group_key, locked_until) "
               "WHERE status = 'running'")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (updated_at) "
               "WHERE status IN ('done', 'cancelled')")
    db.execute("CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received_at)")
    if db["notification_deliveries"].exists():
        db.execute("CREATE INDEX IF NOT EXISTS notification_deliveries_finished ON notification_deliveries "
                   "(updated_at) WHERE status IN ('succeeded', 'failed')")

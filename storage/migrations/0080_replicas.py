"""What several `serve` and `worker` processes must share instead of keeping in memory:
forge rate-limit waits (one job's 429 holds back every process's jobs for that account) and
short named leases (one repository's uploads triaged one at a time across processes)."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["rate_limit_waits"].create(
        {"scope": str, "resume_at": float, "reason": str, "updated_at": str},
        pk="scope",
    )
    db["leases"].create(
        {"name": str, "holder": str, "expires_at": float, "acquired_at": str},
        pk="name",
    )

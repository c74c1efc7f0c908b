"""Shared state of replicas: rate-limit waits and named leases, in the database so that any
number of `serve` and `worker` processes (on one host or several) see the same values.

Plain portable SQL (`?` placeholders, `ON CONFLICT ... DO UPDATE ... WHERE`), so the same
statements run on every backend.
"""

from __future__ import annotations

import time

from storage.database import Database, utcnow


class CoordinationStore:
    database: Database

    # rate-limit waits -----------------------------------------------------------------
    def record_rate_limit(self, scope: str, resume_at: float, reason: str = "") -> None:
        """Remember that `scope` (a forge account) must not be called before `resume_at` (epoch
        seconds). A later wait replaces an earlier one; an earlier one never shortens it."""
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO rate_limit_waits (scope, resume_at, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(scope) DO UPDATE SET resume_at = excluded.resume_at, reason = excluded.reason, "
                "updated_at = excluded.updated_at WHERE rate_limit_waits.resume_at < excluded.resume_at",
                [scope, float(resume_at), reason[:200], utcnow()])

    def rate_limit_until(self, scope: str) -> float:
        """Epoch seconds before which `scope` must not be called (0.0: no wait known)."""
        row = self.database.one("SELECT resume_at FROM rate_limit_waits WHERE scope = ?", [scope])
        return float(row["resume_at"]) if row and row["resume_at"] is not None else 0.0

    # leases -----------------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, ttl: float, *, now: float | None = None) -> bool:
        """Take the lease `name` for `ttl` seconds when it is free, expired or already ours."""
        now = time.time() if now is None else now
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO leases (name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
                "acquired_at = excluded.acquired_at WHERE leases.expires_at < ? OR leases.holder = excluded.holder",
                [name, holder, now + ttl, utcnow(), now])
            row = self.database.one("SELECT holder FROM leases WHERE name = ?", [name])
        return bool(row) and row["holder"] == holder

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        with self.database.transaction() as db:
            cur = db.execute("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
                             [time.time() + ttl, name, holder])
            return cur.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [name, holder])

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        """(holder, expires_at) of a lease, for a waiter deciding whether its holder died."""
        row = self.database.one("SELECT holder, expires_at FROM leases WHERE name = ?", [name])
        return (str(row["holder"]), float(row["expires_at"])) if row else None

    def expire_lease_of(self, name: str, holder: str) -> bool:
        """End a lease whose holder is known dead, so a waiter takes it at once."""
        with self.database.transaction() as db:
            cur = db.execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?", [name, holder])
            return cur.rowcount == 1

"""The SQLite connection: one per thread, WAL mode, explicit transactions, migrations.

WAL plus a busy timeout lets `forge-app serve` and separate `forge-app worker`
processes share one database file safely.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from storage import migrations as _migrations_pkg

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    """Timestamps are stored as ISO-8601 UTC strings: sortable and readable."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Database:
    """Hands each thread its own connection to the same file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            db = sqlite_utils.Database(conn, execute_plugins=False)
            self._local.db = db
            with self._lock:
                self._all.append(conn)
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE takes the write lock up front, so two processes never
        both read-then-write the same row (job claims, token checks)."""
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def migrate(self) -> list[str]:
        """Apply every migration not yet recorded; returns the names applied."""
        db = self.db
        applied: list[str] = []
        with self.transaction():
            if not db["schema_migrations"].exists():
                db["schema_migrations"].create({"name": str, "applied_at": str}, pk="name")
            done = {r["name"] for r in db.query("SELECT name FROM schema_migrations")}
            names = sorted(m.name for m in pkgutil.iter_modules(_migrations_pkg.__path__))
            for name in names:
                if name in done:
                    continue
                module = importlib.import_module(f"storage.migrations.{name}")
                module.apply(db)
                db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [name, utcnow()])
                applied.append(name)
        return applied

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

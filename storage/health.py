"""Is the database reachable right now? For `/readyz`, from a connection of its own.

An open SQLite connection answers `SELECT 1` without touching the file, so the check opens the
file afresh (never creating it) and reads the migrations table: a database whose directory is
gone, unreadable or locked for too long is reported unreachable.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

PING_TIMEOUT = 2.0


def reachable(database: Any) -> bool:
    path = getattr(database, "path", None)
    if isinstance(path, str) and path != ":memory:" and "://" not in path:
        return _sqlite_file_readable(path)
    try:
        database.one("SELECT 1 AS ok")
    except Exception:
        return False
    return True


def _sqlite_file_readable(path: str) -> bool:
    uri = f"file:{quote(str(Path(path).absolute()))}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=PING_TIMEOUT, check_same_thread=False)
    except sqlite3.Error:
        return False
    try:
        conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    except sqlite3.Error:
        return False
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    return True

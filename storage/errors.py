"""Telling "the database is unreachable just now" apart from a bug, whatever the backend.

Callers outside `storage/` ask `is_unavailable(exc)` and answer 503 with Retry-After (the forge
or client sends again later) instead of a 500; nothing was stored, and nothing was acknowledged.
"""

from __future__ import annotations

import sqlite3

# SQLite errors a retry later can outlive: another process holds the lock too long, the file or its
# directory is gone or unreadable (a network mount that went away), the disk is full or failing.
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open database file",
                     "disk i/o error", "database or disk is full", "readonly database")
# PostgreSQL (psycopg 3 and its pool), matched by name so that this module never imports them.
_DRIVER_TRANSIENT = {("psycopg", "OperationalError"), ("psycopg", "InterfaceError"),
                     ("psycopg_pool", "PoolTimeout"), ("psycopg_pool", "PoolClosed"),
                     ("psycopg_pool", "TooManyRequests")}


class StorageUnavailable(Exception):
    """Raised by storage itself when it knows the database cannot be reached."""


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database is unreachable or refused a write for now."""
    for e in _chain(exc):
        if isinstance(e, StorageUnavailable):
            return True
        if isinstance(e, sqlite3.OperationalError):
            message = str(e).lower()
            if any(part in message for part in _SQLITE_TRANSIENT):
                return True
        for cls in type(e).__mro__:
            if (cls.__module__.split(".")[0], cls.__name__) in _DRIVER_TRANSIENT:
                return True
    return False

"""Group commit for intake: one writer thread commits many deliveries per transaction.

Webhook receivers hand their write (a function of the open database) to `submit`; the
writer thread takes whatever is waiting, up to MAX_BATCH, runs each in its own savepoint
(a duplicate delivery fails alone), commits once with `synchronous=FULL` (one fsync for
the whole batch) and only then resolves the callers' futures. So an answered delivery
survives a process crash and a power loss, and 64 concurrent deliveries cost about one
fsync instead of 64 lock hand-offs between threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import sqlite_utils

from storage.database import BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

MAX_BATCH = 256


def synchronous_level() -> str:
    """FORGE_APP_SQLITE_SYNCHRONOUS: FULL (default: an answered delivery survives power loss) or
    NORMAL (survives a crash of forge-app or of a process, not of the machine; no fsync per commit)."""
    level = (os.environ.get("FORGE_APP_SQLITE_SYNCHRONOUS") or "FULL").strip().upper()
    return level if level in ("FULL", "NORMAL", "EXTRA") else "FULL"
Write = Callable[[sqlite_utils.Database], Any]


class _WriteFailed(Exception):
    """A write raised inside a shared batch: redo the batch with a savepoint per write."""


def _resolve(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the caller's loop: hand each waiting receiver its result."""
    for future, ok, value in items:
        if future.done():
            continue  # the request went away (client disconnected): the write stands anyway
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class GroupWriter:
    def __init__(self, path: str, synchronous: str | None = None) -> None:
        self.path = path
        self.synchronous = synchronous or synchronous_level()
        self._queue: queue.Queue[tuple[Write, concurrent.futures.Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.writes = 0

    def submit(self, write: Write) -> concurrent.futures.Future[Any]:
        """Queue `write(db)`; the future resolves once its transaction is committed (or fails)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ensure_thread()
        self._queue.put((write, future))
        return future

    async def run(self, write: Write) -> Any:
        """`submit` for the event loop. The writer resolves a whole batch of these with ONE
        cross-thread call per loop: a wake-up per delivery costs more than the insert."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ensure_thread()
        self._queue.put((write, future))  # type: ignore[arg-type]
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._main, name="forge-app-intake-writer", daemon=True)
                self._thread.start()

    def _connect(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                               isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        return sqlite_utils.Database(conn, execute_plugins=False)

    def _main(self) -> None:
        db: sqlite_utils.Database | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            if db is None:
                try:
                    db = self._connect()
                except Exception as exc:  # unreachable now: these callers get an error (a 503), the thread lives on
                    self._fail(None, batch, exc)
                    continue
            self._commit(db, batch)
        if db is not None:
            db.conn.close()

    def _commit(self, db: sqlite_utils.Database, batch: list[tuple[Write, concurrent.futures.Future[Any]]]) -> None:
        """One transaction for the whole batch; if any write raises, the batch is redone one
        write per savepoint so only that write fails (writes report duplicates by value, so
        this is rare)."""
        try:
            results = self._run(db, batch, isolate=False)
        except _WriteFailed:
            try:
                results = self._run(db, batch, isolate=True)
            except Exception as exc:
                self._fail(db, batch, exc)
                return
        except Exception as exc:
            self._fail(db, batch, exc)
            return
        self.batches += 1
        self.writes += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, bool, Any]]] = {}
        for future, ok, value in results:
            if isinstance(future, asyncio.Future):
                by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
            elif ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, items)

    @staticmethod
    def _run(db: sqlite_utils.Database, batch: list[tuple[Write, concurrent.futures.Future[Any]]], *,
             isolate: bool) -> list[tuple[concurrent.futures.Future[Any], bool, Any]]:
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            for n, (write, future) in enumerate(batch):
                if not isolate:
                    try:
                        results.append((future, True, write(db)))
                    except Exception as exc:
                        raise _WriteFailed() from exc
                    continue
                db.conn.execute(f"SAVEPOINT w{n}")
                try:
                    value = write(db)
                except Exception as exc:  # this write alone is undone; the batch goes on
                    db.conn.execute(f"ROLLBACK TO w{n}")
                    results.append((future, False, exc))
                else:
                    results.append((future, True, value))
                db.conn.execute(f"RELEASE w{n}")
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        return results

    @staticmethod
    def _fail(db: sqlite_utils.Database | None, batch: list[tuple[Write, concurrent.futures.Future[Any]]],
              exc: Exception) -> None:
        """The transaction itself failed (disk full, locked too long): nothing stored, every caller told."""
        log.error("intake batch of %d writes failed: %s", len(batch), exc)
        for _, future in batch:
            if isinstance(future, asyncio.Future):
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    future.get_loop().call_soon_threadsafe(_resolve, [(future, False, exc)])
            elif not future.done():
                future.set_exception(exc)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

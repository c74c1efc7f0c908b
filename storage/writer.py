"""Group commit for intake: one writer thread commits many deliveries per transaction.

Webhook receivers hand their write (a function of the open database) to `submit`; the
writer thread takes whatever is waiting, up to MAX_BATCH, runs them in one transaction
(a run of writes with a `bulk` function, such as deliveries, in a few multi-row
statements: every statement hands the GIL back to the web loop), commits once with
`synchronous=FULL` (one fsync for the whole batch) and only then resolves the callers'
futures. So an answered delivery
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
import time
import weakref
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


def _runs(batch: list[tuple[Write, Any]]) -> list[tuple[Callable[..., list[Any]] | None, list[tuple[Write, Any]]]]:
    """Consecutive writes that share a `bulk` function (e.g. deliveries) go together; others alone."""
    runs: list[tuple[Callable[..., list[Any]] | None, list[tuple[Write, Any]]]] = []
    for item in batch:
        bulk = getattr(item[0], "bulk", None)
        if bulk is not None and runs and runs[-1][0] == bulk:
            runs[-1][1].append(item)
        else:
            runs.append((bulk, [item]))
    return runs


def _flatten(items: list[Any]) -> list[Pending]:
    return [w for item in items for w in (item.items if isinstance(item, _LoopBatch) else [item])]


def _size(item: Any) -> int:
    return len(item.items) if isinstance(item, _LoopBatch) else 1


class _WriteFailed(Exception):
    """A write raised inside a shared batch: redo the batch with a savepoint per write."""


class _LoopQueue:
    """The writes of one event loop, handed to the writer thread as ONE item per commit.

    Everything here runs on the loop's thread. While a batch is being committed, new writes
    gather in `pending`; when the commit's results come back (one cross-thread call), they are
    handed over together. A queue put and a wake-up per delivery cost more than its insert."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: GroupWriter) -> None:
        self.loop = loop
        self.writer = writer
        self.pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self.in_flight = False
        self.scheduled = False

    def add(self, write: Write) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        self.pending.append((write, future))
        if not self.in_flight and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.hand_over)  # after this loop turn: its other deliveries join
        return future

    def hand_over(self) -> None:
        self.scheduled = False
        if self.in_flight or not self.pending:
            return
        batch, self.pending = self.pending, []
        self.in_flight = True
        self.writer._put(_LoopBatch(self, batch))

    def done(self, results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        """On the loop: hand each waiting receiver its result, then the writes that waited."""
        self.in_flight = False
        for future, ok, value in results:
            if future.done():
                continue  # the request went away (client disconnected): the write stands anyway
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self.hand_over()


class _LoopBatch:
    __slots__ = ("items", "owner")

    def __init__(self, owner: _LoopQueue, items: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        self.owner = owner
        self.items = items


Pending = tuple[Write, Any]  # (write, concurrent or asyncio future)


class GroupWriter:
    def __init__(self, path: str, synchronous: str | None = None) -> None:
        self.path = path
        self.synchronous = synchronous or synchronous_level()
        self._queue: queue.Queue[tuple[Write, concurrent.futures.Future[Any]] | _LoopBatch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = weakref.WeakKeyDictionary()
        self.batches = 0
        self.writes = 0
        self.last_commit = 0.0  # time.monotonic() of the last commit: a worker in this process makes way

    def submit(self, write: Write) -> concurrent.futures.Future[Any]:
        """Queue `write(db)`; the future resolves once its transaction is committed (or fails)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put((write, future))
        return future

    async def run(self, write: Write) -> Any:
        """`submit` for the event loop: the loop's writes go to the writer thread together, one
        batch per commit, and come back with one cross-thread call."""
        loop = asyncio.get_running_loop()
        owner = self._loops.get(loop)
        if owner is None:
            owner = self._loops[loop] = _LoopQueue(loop, self)
        return await owner.add(write)

    def _put(self, item: tuple[Write, concurrent.futures.Future[Any]] | _LoopBatch) -> None:
        self._ensure_thread()
        self._queue.put(item)

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
            items = [item]
            size = _size(item)
            while size < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                items.append(more)
                size += _size(more)
            if db is None:
                try:
                    db = self._connect()
                except Exception as exc:  # unreachable now: these callers get an error (a 503), the thread lives on
                    log.error("intake batch of %d writes failed: %s", size, exc)
                    self._deliver(items, [(future, False, exc) for _, future in _flatten(items)])
                    continue
            try:
                self._commit(db, items)
            except Exception as exc:  # a bug here must not leave a loop's batch unanswered (its loop
                log.exception("intake writer: batch of %d writes lost", size)  # would wait forever)
                self._deliver(items, [(future, False, exc) for _, future in _flatten(items)])
        if db is not None:
            db.conn.close()

    def _commit(self, db: sqlite_utils.Database,
                items: list[tuple[Write, concurrent.futures.Future[Any]] | _LoopBatch]) -> None:
        """One transaction for the whole batch; if any write raises, the batch is redone one
        write per savepoint so only that write fails (writes report duplicates by value, so
        this is rare)."""
        batch = _flatten(items)
        try:
            try:
                results = self._run(db, batch, isolate=False)
            except _WriteFailed:
                results = self._run(db, batch, isolate=True)
        except Exception as exc:  # the transaction itself failed (disk full, locked too long)
            log.error("intake batch of %d writes failed: %s", len(batch), exc)
            results = [(future, False, exc) for _, future in batch]
        else:
            self.batches += 1
            self.writes += len(batch)
            self.last_commit = time.monotonic()
        self._deliver(items, results)

    @staticmethod
    def _deliver(items: list[tuple[Write, concurrent.futures.Future[Any]] | _LoopBatch],
                 results: list[tuple[Any, bool, Any]]) -> None:
        """Each caller its result: a loop's whole batch with one cross-thread call."""
        outcome = iter(results)
        for item in items:
            if isinstance(item, _LoopBatch):
                mine = [next(outcome) for _ in item.items]
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    item.owner.loop.call_soon_threadsafe(item.owner.done, mine)
                continue
            future, ok, value = next(outcome)
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @staticmethod
    def _run(db: sqlite_utils.Database, batch: list[tuple[Write, concurrent.futures.Future[Any]]], *,
             isolate: bool) -> list[tuple[concurrent.futures.Future[Any], bool, Any]]:
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            if not isolate:
                for bulk, run in _runs(batch):
                    try:
                        values = bulk(db, [w for w, _ in run]) if bulk is not None else [run[0][0](db)]
                    except Exception as exc:
                        raise _WriteFailed() from exc
                    results.extend((future, True, value) for (_, future), value in zip(run, values, strict=True))
            for n, (write, future) in enumerate(batch if isolate else ()):
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

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

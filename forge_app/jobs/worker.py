"""The job worker: claims durable jobs and runs their handlers with retries and backoff.

`forge-app serve` runs it in its own thread with its own event loop (`WorkerThread`), so
job work never delays an HTTP answer; `forge-app worker` runs it alone. Several workers
can share one database because claims are leases taken in IMMEDIATE transactions.

While a handler runs, a heartbeat thread renews the job's short lease, so a job whose
process died (kill -9, power loss) is claimed again within LEASE_SECONDS, and a slow
handler keeps its job however long it takes. Stopping (SIGTERM) lets the current job
finish for a grace period, then gives it back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from forge_app.config import Settings
from forge_app.forges import ratelimit
from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.log_context import bind
from storage import Job, Storage
from storage.jobs import HEARTBEAT_SECONDS, LEASE_SECONDS

log = logging.getLogger(__name__)

BASE_DELAY = 5.0
MAX_DELAY = 3600.0
IDLE_POLL = 2.0
STOP_GRACE = 20.0  # a stopping worker lets its job run this long, then gives it back
BUSY_SHARE = 0.25  # of its time a worker that yields to intake spends on jobs while deliveries arrive


@dataclass
class JobContext:
    storage: Storage
    settings: Settings
    services: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[JobContext, Job], Awaitable[None]]


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter between half and the whole step."""
    step = min(MAX_DELAY, BASE_DELAY * (2 ** max(0, attempts - 1)))
    return step * (0.5 + 0.5 * (rng or random).random())


def _count_run(kind: str, outcome: str) -> None:
    from forge_app.web.metrics import JOB_RUNS

    JOB_RUNS.labels(kind=kind, outcome=outcome).inc()


class _Heartbeat:
    """Renews the lease of the worker's current job from its own thread, so a busy event loop
    cannot starve it. One thread per worker for its whole life: starting a thread per job
    cost more than many jobs themselves during a webhook burst."""

    def __init__(self, storage: Storage, worker_id: str, lease: float, every: float) -> None:
        self._storage, self._worker_id, self._lease, self._every = storage, worker_id, lease, every
        self._job: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, job_id: int) -> None:
        self._job = job_id
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="forge-app-heartbeat", daemon=True)
            self._thread.start()

    def unwatch(self) -> None:
        self._job = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            job_id = self._job
            if job_id is None:
                continue
            try:
                renewed = self._storage.heartbeat_job(job_id, self._worker_id, lease=self._lease)
            except Exception:  # a locked database must not kill the heartbeat: try again next beat
                log.exception("job %s: heartbeat failed", job_id)
                continue
            if not renewed and self._job == job_id:  # not merely finished meanwhile
                log.warning("job %s: lease lost (another worker may run it now)", job_id)
                self._job = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def local_identity() -> str:
    """This machine and pid namespace: two containers sharing a hostname never take each other's
    process ids for their own."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = 0
    return f"{socket.gethostname()}/{ns}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_dead_local_leases(storage: Storage, host: str | None = None) -> int:
    """Jobs held by a worker process of this machine that no longer exists (kill -9, OOM):
    their leases end now instead of after LEASE_SECONDS. Returns how many."""
    host = host or local_identity()
    reclaimed = 0
    for job_id, holder in storage.running_leases():
        name, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if name != host or not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        if storage.expire_lease(job_id, holder):
            log.info("job %s was held by %s, a process that no longer exists: running it again now", job_id, holder)
            reclaimed += 1
    return reclaimed


class Worker:
    def __init__(self, context: JobContext, handlers: dict[str, Handler], worker_id: str | None = None, *,
                 lease: float = LEASE_SECONDS, heartbeat: float = HEARTBEAT_SECONDS,
                 yield_to: Callable[[], bool] | None = None) -> None:
        self.context = context
        self.handlers = handlers
        self.worker_id = worker_id or f"{local_identity()}:{os.getpid()}:{id(self):x}"
        self.lease = lease
        self.heartbeat = heartbeat
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: tuple[Job, asyncio.Task[None]] | None = None
        self._beat = _Heartbeat(context.storage, self.worker_id, lease, heartbeat)
        self.yield_to = yield_to
        self.stopped = threading.Event()

    def _call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the worker's loop, whichever thread asks (the web loop wakes it)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            fn()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def wake(self) -> None:
        if self._wake.is_set():
            return  # already woken: spare the cross-thread call (intake calls this per delivery)
        self._call(self._wake.set)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Finish the current job (for `grace` seconds at most, then give it back), then return."""
        def _stop() -> None:
            self._stop.set()
            self._wake.set()
            if self._current is not None and self._loop is not None:
                self._loop.call_later(grace, self._cancel_current)

        self._call(_stop)

    def _cancel_current(self) -> None:
        if self._current is not None:
            log.warning("job %s (%s) still running at shutdown: giving it back to the queue",
                        self._current[0].id, self._current[0].kind)
            self._current[1].cancel()

    async def run_once(self, now: float | None = None) -> bool:
        """Run at most one due job; True if one ran."""
        storage = self.context.storage
        # Called directly: the worker's loop runs nothing else meanwhile, and a thread-pool
        # hand-off per job cost the web loop more (GIL) than the claim itself.
        job = storage.claim_job(self.worker_id, now=now, lease=self.lease)
        if job is None:
            return False
        with bind(job_id=job.id, job_kind=job.kind, scan_id=job.payload.get("scan_id"),
                  delivery=job.payload.get("delivery")), ratelimit.as_of(now):
            await self._run(job)
        return True

    async def _run(self, job: Job) -> None:
        storage = self.context.storage
        handler = self.handlers.get(job.kind)
        if handler is None:
            storage.fail_job(job.id, f"no handler for job kind {job.kind!r}")
            _count_run(job.kind, "dead")
            return
        self._beat.watch(job.id)
        task = asyncio.ensure_future(handler(self.context, job))
        self._current = (job, task)
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the worker itself is being cancelled
            released = await asyncio.to_thread(storage.release_job, job.id, self.worker_id)
            log.info("job %s (%s) given back to the queue%s", job.id, job.kind, "" if released else " (lease lost)")
            _count_run(job.kind, "released")
        except RetryLater as exc:
            self._retry(job, str(exc), exc.delay)
        except GiveUp as exc:
            log.warning("job %s (%s) failed for good: %s", job.id, job.kind, exc)
            storage.fail_job(job.id, str(exc))
            _count_run(job.kind, "dead")
        except Exception as exc:  # a bug or an unexpected answer: retry, keep the reason
            log.exception("job %s (%s) raised", job.id, job.kind)
            self._retry(job, f"{type(exc).__name__}: {exc}", None)
        else:
            storage.complete_job(job.id)
            _count_run(job.kind, "done")
        finally:
            self._current = None
            self._beat.unwatch()

    def _retry(self, job: Job, error: str, delay: float | None) -> None:
        if job.attempts >= job.max_attempts:
            log.warning("job %s (%s) gave up after %s attempts: %s", job.id, job.kind, job.attempts, error)
            self.context.storage.fail_job(job.id, error)
            _count_run(job.kind, "dead")
            return
        wait = delay if delay is not None else backoff(job.attempts)
        self.context.storage.retry_job(job.id, time.time() + wait, error)
        _count_run(job.kind, "retry")

    async def _make_way(self, spent: float) -> None:
        """Webhooks are arriving (`yield_to`): pause so this worker takes at most BUSY_SHARE of
        the time. Its jobs can wait a little; a delivery a forge gets no answer to within 10 s is
        failed (in-process, the worker also competes for Python's GIL with the web loop)."""
        pause = min(1.0, max(0.002, spent * (1 - BUSY_SHARE) / BUSY_SHARE))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=pause)

    async def drain(self, limit: int = 1000) -> int:
        """Run due jobs until none is left (tests and `worker --once`)."""
        ran = 0
        try:
            while ran < limit and await self.run_once():
                ran += 1
        finally:
            self._beat.close()
        return ran

    async def run_forever(self) -> None:
        from forge_app.jobs.retention import Pruner

        self._loop = asyncio.get_running_loop()
        if self._stop.is_set():
            return
        log.info("job worker %s started", self.worker_id)
        try:
            await asyncio.to_thread(reclaim_dead_local_leases, self.context.storage)
        except Exception:
            log.exception("could not look for jobs of dead local workers; their leases will run out")
        pruner = Pruner(self.context.storage, self.context.settings.retention_days)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ran = await self.run_once()
                except Exception as exc:
                    _log_loop_error(exc)
                    ran = False
                if self._stop.is_set():
                    break
                if ran:
                    if self.yield_to is not None and self.yield_to():
                        await self._make_way(time.monotonic() - started)
                    continue
                try:
                    await pruner.maybe_prune()
                    next_at = await asyncio.to_thread(self.context.storage.next_job_at)
                except Exception as exc:  # the database is away: keep polling gently until it is back
                    _log_loop_error(exc)
                    next_at = None
                # A due job that was not claimed waits for its group: poll gently, don't spin.
                wait = IDLE_POLL if next_at is None else max(0.25, min(IDLE_POLL, next_at - time.time()))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            self._beat.close()
            log.info("job worker %s stopped", self.worker_id)
            self.stopped.set()


def _log_loop_error(exc: Exception) -> None:
    """An unreachable database is expected now and then (the worker goes on when it is back): one line,
    no traceback; anything else is a bug worth its traceback."""
    from storage.errors import is_unavailable

    if is_unavailable(exc):
        log.warning("job worker: the database is unreachable (%s); trying again", type(exc).__name__)
    else:
        log.error("job worker loop error", exc_info=exc)


class WorkerThread:
    """The worker in its own thread and event loop: `forge-app serve`'s default.

    Storage connections are per thread, so the worker never shares a SQLite connection
    (or the GIL-heavy part of its work) with the loop that answers webhooks."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._thread = threading.Thread(target=self._main, name="forge-app-worker", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.worker.run_forever())
        except Exception:
            log.exception("job worker thread crashed")

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Blocks until the current job finished or was given back (at most grace + a few seconds)."""
        self.worker.stop(grace)
        self._thread.join(timeout=grace + 10)
        if self._thread.is_alive():
            current = self.worker._current
            if current is not None:
                self.worker.context.storage.release_job(current[0].id, self.worker.worker_id)
            log.warning("job worker thread did not stop in time")

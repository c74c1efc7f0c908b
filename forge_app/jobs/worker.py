"""The job worker: claims durable jobs and runs their handlers with retries and backoff.

It runs inside `forge-app serve` and alone as `forge-app worker`; several workers
can share one database because claims are leases taken in IMMEDIATE transactions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from forge_app.config import Settings
from forge_app.jobs.errors import GiveUp, RetryLater
from storage import Job, Storage

log = logging.getLogger(__name__)

BASE_DELAY = 5.0
MAX_DELAY = 3600.0
IDLE_POLL = 2.0


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


class Worker:
    def __init__(self, context: JobContext, handlers: dict[str, Handler], worker_id: str | None = None) -> None:
        self.context = context
        self.handlers = handlers
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run_once(self, now: float | None = None) -> bool:
        """Run at most one due job; True if one ran."""
        storage = self.context.storage
        job = await asyncio.to_thread(storage.claim_job, self.worker_id, now=now)
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        if handler is None:
            storage.fail_job(job.id, f"no handler for job kind {job.kind!r}")
            return True
        try:
            await handler(self.context, job)
        except RetryLater as exc:
            self._retry(job, str(exc), exc.delay)
        except GiveUp as exc:
            log.warning("job %s (%s) failed for good: %s", job.id, job.kind, exc)
            storage.fail_job(job.id, str(exc))
        except Exception as exc:  # a bug or an unexpected answer: retry, keep the reason
            log.exception("job %s (%s) raised", job.id, job.kind)
            self._retry(job, f"{type(exc).__name__}: {exc}", None)
        else:
            storage.complete_job(job.id)
        return True

    def _retry(self, job: Job, error: str, delay: float | None) -> None:
        if job.attempts >= job.max_attempts:
            log.warning("job %s (%s) gave up after %s attempts: %s", job.id, job.kind, job.attempts, error)
            self.context.storage.fail_job(job.id, error)
            return
        wait = delay if delay is not None else backoff(job.attempts)
        self.context.storage.retry_job(job.id, time.time() + wait, error)

    async def drain(self, limit: int = 1000) -> int:
        """Run due jobs until none is left (tests and `worker --once`)."""
        ran = 0
        while ran < limit and await self.run_once():
            ran += 1
        return ran

    async def run_forever(self) -> None:
        log.info("job worker %s started", self.worker_id)
        while not self._stop.is_set():
            try:
                ran = await self.run_once()
            except Exception:
                log.exception("job worker loop error")
                ran = False
            if ran:
                continue
            next_at = self.context.storage.next_job_at()
            # A due job that was not claimed waits for its group: poll gently, don't spin.
            wait = IDLE_POLL if next_at is None else max(0.25, min(IDLE_POLL, next_at - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
        log.info("job worker %s stopped", self.worker_id)

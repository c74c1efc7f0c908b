"""Background pruning of finished work: done jobs, webhook deliveries, notification records.

Runs inside the worker when it is idle, in batches of BATCH rows, each its own short
transaction, so the write lock is never held for long. Delivery rows are the
redelivery de-duplication record, so they are kept at least MIN_DAYS (the longest a forge
lets an operator redeliver a delivery is 3 days; automatic retries stop sooner).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from storage import Storage

log = logging.getLogger(__name__)

BATCH = 500
INTERVAL = 600.0  # seconds between pruning rounds
MIN_DAYS = 3


def cutoff(days: int, now: datetime | None = None) -> str:
    """The ISO timestamp before which finished rows go; never fewer than MIN_DAYS back."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=max(MIN_DAYS, days))).isoformat(timespec="seconds")


async def prune(storage: Storage, days: int, *, batch: int = BATCH, pause: float = 0.05) -> int:
    """Delete everything older than the cutoff, one small batch at a time; returns rows deleted."""
    before = cutoff(days)
    total = 0
    while True:
        deleted = await asyncio.to_thread(storage.prune_finished, before, batch=batch)
        total += deleted
        if deleted == 0:
            return total
        await asyncio.sleep(pause)  # let intake writers in between batches


class Pruner:
    def __init__(self, storage: Storage, days: int, interval: float = INTERVAL) -> None:
        self.storage = storage
        self.days = days
        self.interval = interval
        self._next = 0.0

    async def maybe_prune(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.interval
        try:
            deleted = await prune(self.storage, self.days)
        except Exception:
            log.exception("pruning finished jobs and deliveries failed; trying again later")
            return
        if deleted:
            log.info("pruned %d finished jobs, deliveries and notification records older than %d days", deleted,
                     max(MIN_DAYS, self.days))

"""The retry schedule of outbound deliveries: about a day, in 15 attempts.

Exponential from 10 s, doubling, capped at 6 h, each wait jittered by ±20% so that
deliveries failing together do not come back together. Nominal waits after attempts
1..14: 10 s, 20 s, 40 s ... 2.8 h, then 6 h three times: 85,270 s ≈ 23.7 h in all.
The worker's own backoff is not used: the delivery keeps its own attempt count.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from forge_app.core.retry_after import parse_retry_after as core_retry_after

MAX_ATTEMPTS = 15
BASE_DELAY = 10.0
MAX_DELAY = 6 * 3600.0
JITTER = 0.2
MIN_RETRY_AFTER = 1.0


def nominal_delay(attempt: int) -> float:
    """The wait after failed attempt number `attempt` (1-based), before jitter."""
    return min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempt - 1))


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    return nominal_delay(attempt) * (1 + JITTER * (2 * (rng or random).random() - 1))


def nominal_schedule() -> list[float]:
    """The waits between the MAX_ATTEMPTS attempts (one fewer than attempts)."""
    return [nominal_delay(a) for a in range(1, MAX_ATTEMPTS)]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (core.retry_after), clamped to [1 s, 6 h] so a
    receiver can slow us down but not park a delivery for weeks."""
    return core_retry_after(value, now, minimum=MIN_RETRY_AFTER, maximum=MAX_DELAY)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

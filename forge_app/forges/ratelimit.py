"""Stop before a forge's rate limit, not after it: read the budget headers on every answer.

GitHub (`X-RateLimit-Remaining` / `X-RateLimit-Reset`) and GitLab (`RateLimit-Remaining` /
`RateLimit-Reset`, epoch seconds) say how many requests are left and when the window resets:
with RESERVE or fewer left, the next request of this job is not sent; the job is retried after
the reset instead (RetryLater), so interactive users and other jobs keep the last few requests
and nobody gets a 403/429. Bitbucket Cloud only says `X-RateLimit-NearLimit: true` (under 20 %
of the hourly allowance left): the job then pauses NEAR_LIMIT_PAUSE seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from forge_app.jobs.errors import RetryLater

RESERVE = 5
NEAR_LIMIT_PAUSE = 300.0
MAX_PAUSE = 3600.0


def _get(headers: Mapping[str, Any], name: str) -> str | None:
    """Case-insensitive (httpx and requests headers already are; a plain dict may not be)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return str(value).strip() if value is not None else None


def pause_after(headers: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """Seconds to hold off before the next request, from one answer's headers; None: go on."""
    now = time.time() if now is None else now
    for remaining_name, reset_name in (("x-ratelimit-remaining", "x-ratelimit-reset"),
                                       ("ratelimit-remaining", "ratelimit-reset")):
        remaining = _get(headers, remaining_name)
        if remaining is None or not remaining.isdigit():
            continue
        if int(remaining) > RESERVE:
            return None
        reset = _get(headers, reset_name)
        if reset and reset.isdigit():
            return min(MAX_PAUSE, max(1.0, float(reset) - now + 1.0))
        return 60.0
    if (_get(headers, "x-ratelimit-nearlimit") or "").lower() == "true":
        return NEAR_LIMIT_PAUSE
    return None


class Budget:
    """One job's view of a forge's rate limit."""

    def __init__(self, forge: str) -> None:
        self.forge = forge
        self.resume_at = 0.0

    def observe(self, headers: Mapping[str, Any], *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        pause = pause_after(headers, now=now)
        if pause is not None:
            self.resume_at = max(self.resume_at, now + pause)

    def check(self, *, now: float | None = None) -> None:
        """Raise RetryLater when the forge's budget is (nearly) spent."""
        now = time.time() if now is None else now
        if self.resume_at > now:
            wait = self.resume_at - now
            raise RetryLater(f"{self.forge} rate limit nearly reached; waiting {int(wait)} s before the next request",
                             wait)

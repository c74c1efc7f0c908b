"""Stop before a forge's rate limit, not after it: read the budget headers on every answer.

GitHub (`X-RateLimit-Remaining` / `X-RateLimit-Reset`) and GitLab (`RateLimit-Remaining` /
`RateLimit-Reset`, epoch seconds) say how many requests are left and when the window resets:
with RESERVE or fewer left, the next request of this job is not sent; the job is retried after
the reset instead (RetryLater), so interactive users and other jobs keep the last few requests
and nobody gets a 403/429. Bitbucket Cloud only says `X-RateLimit-NearLimit: true` (under 20 %
of the hourly allowance left): the job then pauses NEAR_LIMIT_PAUSE seconds.

A wait is shared: with a `SharedWaits` store (the app's storage) and a scope naming the forge
account (a GitHub installation, a GitLab or Bitbucket connection), a pause one job observes is
recorded in the database and every other job, in any `serve` or `worker` process, honours it
before its own next request. A 429 answer (with `Retry-After`) counts as such a pause too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from forge_app.jobs.errors import RetryLater

RESERVE = 5
NEAR_LIMIT_PAUSE = 300.0
MAX_PAUSE = 3600.0


# A worker asked to run jobs "as of" another time (`run_once(now=...)`) runs their budgets at that time
# too, so a shared wait recorded in one clock is read in the same clock.
_SKEW: ContextVar[float] = ContextVar("forge_app_ratelimit_skew", default=0.0)


def _now() -> float:
    return time.time() + _SKEW.get()


@contextlib.contextmanager
def as_of(now: float | None) -> Iterator[None]:
    """Budgets checked inside the block see `now` as the current time (None: the real clock)."""
    token = _SKEW.set(0.0 if now is None else now - time.time())
    try:
        yield
    finally:
        _SKEW.reset(token)


def _get(headers: Mapping[str, Any], name: str) -> str | None:
    """Case-insensitive (httpx and requests headers already are; a plain dict may not be)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return str(value).strip() if value is not None else None


def pause_after(headers: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """Seconds to hold off before the next request, from one answer's headers; None: go on."""
    now = _now() if now is None else now
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


def refused_pause(status: int | None, headers: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """A 429 (or a 403 with no requests left) is a pause too: `Retry-After` seconds, else the reset."""
    if status not in (403, 429):
        return None
    retry_after = _get(headers, "retry-after")
    if retry_after and retry_after.isdigit():
        return min(MAX_PAUSE, max(1.0, float(retry_after)))
    if status == 429:
        return pause_after(headers, now=now) or 60.0
    return None if _get(headers, "x-ratelimit-remaining") != "0" else pause_after(headers, now=now)


class SharedWaits(Protocol):
    """Where waits are shared between processes (storage.CoordinationStore)."""

    def record_rate_limit(self, scope: str, resume_at: float, reason: str = "") -> None: ...

    def rate_limit_until(self, scope: str) -> float: ...


def connection_scope(connection: Any) -> str:
    """The shared-wait scope of a GitLab or Bitbucket connection (its token's own budget)."""
    return f"{connection.forge}:connection:{connection.id}"


class Budget:
    """One job's view of a forge's rate limit, shared through `waits` under `scope` when given."""

    def __init__(self, forge: str, waits: SharedWaits | None = None, scope: str | None = None) -> None:
        self.forge = forge
        self.resume_at = 0.0
        self.waits = waits
        self.scope = scope

    def observe(self, headers: Mapping[str, Any], *, now: float | None = None, status: int | None = None,
                scope: str | None = None) -> None:
        """Note the pause an answer asks for; `scope` overrides the budget's own (e.g. an app-JWT call)."""
        now = _now() if now is None else now
        pause = pause_after(headers, now=now)
        refused = refused_pause(status, headers, now=now)
        if refused is not None:
            pause = max(pause or 0.0, refused)
        if pause is None:
            return
        scope = scope or self.scope
        if scope == self.scope:
            self.resume_at = max(self.resume_at, now + pause)
        if self.waits is not None and scope:
            self.waits.record_rate_limit(scope, now + pause, f"{self.forge} asked to wait {int(pause)} s")

    def check(self, *, now: float | None = None) -> None:
        """Raise RetryLater when the forge's budget is (nearly) spent, here or in another process."""
        now = _now() if now is None else now
        if self.waits is not None and self.scope:
            self.resume_at = max(self.resume_at, self.waits.rate_limit_until(self.scope))
        if self.resume_at > now:
            wait = self.resume_at - now
            raise RetryLater(f"{self.forge} rate limit nearly reached; waiting {int(wait)} s before the next request",
                             wait)

"""One vocabulary for what a failed forge call means to a job, whichever forge and HTTP library.

`RetryLater(reason, delay)`: time can fix it (rate limit, 5xx, unreachable); the worker
retries after `delay` (a forge's Retry-After, read by core.retry_after) or its backoff.
`GiveUp(reason)`: an admin must fix it (token, permission, a thing that is gone); the job
stops with a sentence that says what to do. Adapters translate their library's exception
into (status, detail, retry_after) and call `job_error`; only the sentences are theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from forge_app.jobs.errors import GiveUp, RetryLater

__all__ = ["GiveUp", "RetryLater", "job_error"]

DEFAULT_RATE_LIMIT_WAIT = 60.0


def job_error(title: str, status: int | None, what: str, *, detail: str = "", retry_after: float | None = None,
              advice: Mapping[int, str] | None = None, rate_limited: bool = False) -> RetryLater | GiveUp:
    """`title` names the forge for people ("GitLab"); `status` None means no HTTP answer at all;
    `advice` maps a status to the whole GiveUp sentence (what an admin should do); `rate_limited`
    says a non-429 answer was a rate limit (GitHub answers 403 for its secondary limits)."""
    if status is None:
        return RetryLater(f"{title} could not be reached while {what}" + (f": {detail}" if detail else ""))
    if status == 429 or rate_limited:
        return RetryLater(f"{title} rate limit while {what}; retrying later",
                          retry_after if retry_after is not None else DEFAULT_RATE_LIMIT_WAIT)
    if status >= 500:
        return RetryLater(f"{title} is failing ({status}) while {what}; retrying later", retry_after)
    sentence = (advice or {}).get(status)
    if sentence:
        return GiveUp(sentence)
    return GiveUp(f"{title} refused {what} ({status})" + (f": {detail}" if detail else ""))

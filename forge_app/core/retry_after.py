"""The one reader of `Retry-After` (RFC 9110 §10.2.3), for forge APIs and outbound notifications alike.

Its value is delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`). Anything
else (garbage, a negative number, a date Python cannot read) means "no advice": None, and the
caller falls back to its own schedule. The answer is clamped to [minimum, maximum], so a server
can slow forge-app down but never park a job for weeks, and a 400-digit number never becomes inf.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime

DEFAULT_MAXIMUM = 24 * 3600.0


def parse_retry_after(value: str | None, now: float, *, minimum: float = 0.0,
                      maximum: float = DEFAULT_MAXIMUM) -> float | None:
    """Seconds to wait from `now` (epoch seconds), clamped; None when the header gives no usable advice."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) <= 15 else maximum  # more digits than any real wait
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        try:
            seconds = when.timestamp() - now
        except (OverflowError, OSError, ValueError):
            return None
    return max(minimum, min(maximum, seconds))

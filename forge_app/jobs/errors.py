"""How a job handler tells the worker what to do next."""

from __future__ import annotations


class RetryLater(Exception):
    """Transient: try again after `delay` seconds (e.g. a forge's rate limit said so)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class GiveUp(Exception):
    """Permanent: retrying cannot help (e.g. a 404 target); the job is marked failed."""

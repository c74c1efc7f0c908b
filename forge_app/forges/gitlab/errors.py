"""What can go wrong talking to GitLab, as a few exceptions the rest of the adapter can act on.

python-gitlab raises one exception type for every HTTP failure; the connection check
needs to know which kind it was to tell the admin what to fix, and jobs turn them into
the one vocabulary of forges/errors.py (`to_job_error`). Messages never contain the token.
"""

from __future__ import annotations

from forge_app.forges import errors
from forge_app.jobs.errors import GiveUp, RetryLater


class GitLabError(Exception):
    """A GitLab request failed; `status` is the HTTP status when there was an answer."""

    status: int | None = None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class GitLabUnreachable(GitLabError):
    """No HTTP answer at all: DNS, refused connection, TLS, timeout."""


class GitLabRateLimited(GitLabError):
    status = 429

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class GitLabServerError(GitLabError):
    """5xx: GitLab's side; worth retrying."""


class GitLabUnauthorized(GitLabError):
    status = 401


class GitLabForbidden(GitLabError):
    status = 403

    def __init__(self, message: str, *, insufficient_scope: bool = False) -> None:
        super().__init__(message, 403)
        self.insufficient_scope = insufficient_scope


class GitLabNotFound(GitLabError):
    status = 404

    def __init__(self, message: str, *, from_gitlab: bool = True) -> None:
        super().__init__(message, 404)
        self.from_gitlab = from_gitlab  # False: the answer was not GitLab's JSON (wrong base URL?)


class GitLabRejected(GitLabError):
    """400/409/422: GitLab understood the request and refused it (e.g. an invalid position)."""


def to_job_error(exc: GitLabError, what: str) -> RetryLater | GiveUp:
    """The worker's view, in the one vocabulary of forges/errors.py: RetryLater for what time can fix,
    GiveUp, with what an admin must do, for the rest."""
    if isinstance(exc, GitLabUnreachable):
        return errors.job_error("GitLab", None, what, detail=exc.message)
    forbidden = (f"the connection's GitLab token lacks the `api` scope ({what}); create a token with the api scope "
                 "and re-add the connection") if isinstance(exc, GitLabForbidden) and exc.insufficient_scope else \
        (f"GitLab refused {what} (403): the token's user needs at least the Developer role on the project "
         f"({exc.message})")
    return errors.job_error("GitLab", exc.status or 500, what, detail=exc.message,
                            retry_after=exc.retry_after if isinstance(exc, GitLabRateLimited) else None,
                            rate_limited=isinstance(exc, GitLabRateLimited), advice={
        401: f"GitLab rejected the connection's token while {what} (401): it is invalid, expired or revoked; "
             "create a new token and re-add the connection",
        403: forbidden,
        404: f"GitLab answered 404 while {what}: the project or merge request is gone or no longer visible to "
             "the connection's token",
    })

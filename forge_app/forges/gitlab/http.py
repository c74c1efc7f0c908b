"""Blocking GitLab REST calls through python-gitlab, with failures translated (see errors.py).

The raw `http_*` helpers are used with explicit paths rather than python-gitlab's
object managers: every request this app sends is then exactly one documented
operation (validated in the tests against the contract), with no implicit lookups.
python-gitlab's own waiting on 429 is turned off (a job must not sleep inside the
worker): a response hook raises at once and the job is retried after Retry-After.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import gitlab
import gitlab.exceptions
import requests

from forge_app import __version__
from forge_app.core.retry_after import parse_retry_after
from forge_app.forges.gitlab.errors import (
    GitLabError,
    GitLabForbidden,
    GitLabNotFound,
    GitLabRateLimited,
    GitLabRejected,
    GitLabServerError,
    GitLabUnauthorized,
    GitLabUnreachable,
)
from forge_app.forges.ratelimit import Budget, SharedWaits

T = TypeVar("T")
PER_PAGE = 100
USER_AGENT = f"forge-app/{__version__}"


class GitLabBadAnswer(GitLabError):
    """A 2xx answer that is not GitLab's JSON: usually a base URL that is not a GitLab instance."""


def instance_url(base_url: str) -> str:
    """The instance URL python-gitlab wants, tolerating a pasted `/api/v4` suffix."""
    url = base_url.strip().rstrip("/")
    return url[: -len("/api/v4")] if url.endswith("/api/v4") else url


def project_ref(project: str | int) -> str:
    """A project id for a path segment: numeric ids as is, paths URL-encoded (`group%2Fproject`)."""
    text = str(project)
    return text if text.isdigit() else quote(text, safe="")


class _RateLimitedSignal(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("429")
        self.retry_after = retry_after


class _RedirectedWriteSignal(Exception):
    """A write answered with a redirect: requests would resend it as a GET to the new address
    (a request GitLab's API does not have), so it is stopped before that."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(str(status))
        self.status = status
        self.location = location


def _retry_after(headers: Any) -> float | None:
    waited = parse_retry_after(headers.get("Retry-After"), time.time())
    if waited is not None:
        return waited
    reset = headers.get("RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "the request timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (is the certificate trusted?)"
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if m:
        return m.group(1).strip().rstrip(".").lower()
    return "the connection failed"


def _error_body(body: bytes | None) -> tuple[dict[str, Any] | None, str]:
    """GitLab's JSON error (or None when the answer is not GitLab's) and a short message."""
    try:
        doc = json.loads(body or b"")
    except ValueError:
        return None, "the answer is not JSON"
    if not isinstance(doc, dict):
        return None, "the answer is not a JSON object"
    message = doc.get("message", doc.get("error_description", doc.get("error", "")))
    if not isinstance(message, str):
        message = json.dumps(message, separators=(",", ":"))
    return doc, message[:300]


def translate(exc: Exception) -> GitLabError:
    """One of our GitLabError kinds for anything python-gitlab/requests raised."""
    if isinstance(exc, GitLabError):
        return exc
    if isinstance(exc, _RateLimitedSignal):
        return GitLabRateLimited("GitLab answered 429 Too Many Requests", exc.retry_after)
    if isinstance(exc, _RedirectedWriteSignal):
        return GitLabRejected(f"GitLab redirected the request ({exc.status}) to {exc.location[:200]}", exc.status)
    if isinstance(exc, requests.RequestException):
        return GitLabUnreachable(_reason(exc))
    if isinstance(exc, gitlab.exceptions.GitlabParsingError):
        return GitLabBadAnswer("the answer is not JSON")
    if isinstance(exc, gitlab.exceptions.GitlabError):
        status = exc.response_code
        doc, message = _error_body(exc.response_body)
        if status == 401:
            return GitLabUnauthorized(message or "401 Unauthorized")
        if status == 403:
            scope = doc is not None and doc.get("error") == "insufficient_scope"
            return GitLabForbidden(message or "403 Forbidden", insufficient_scope=scope)
        if status == 404:
            return GitLabNotFound(message or "404 Not Found", from_gitlab=doc is not None)
        if status == 429:
            return GitLabRateLimited("GitLab answered 429 Too Many Requests", None)
        if status is not None and status >= 500:
            return GitLabServerError(f"{status} {message}".strip(), status)
        if status is None:  # e.g. python-gitlab's RedirectError on a POST
            return GitLabRejected(str(exc.error_message)[:300])
        return GitLabRejected(message or f"HTTP {status}", status)
    raise exc


class GitLabApi:
    """One GitLab instance and token. Blocking: callers run methods in a thread."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, waits: SharedWaits | None = None,
                 scope: str | None = None) -> None:
        self.base_url = instance_url(base_url)
        self.requests_sent = 0
        self.budget = Budget("GitLab", waits, scope)  # shared with other processes when `waits` is given
        self.redirected_to: str | None = None  # the API root GitLab redirected us to, if any
        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        self._gl = gitlab.Gitlab(self.base_url, private_token=token, retry_transient_errors=False,
                                 timeout=timeout, session=session, keep_base_url=True, user_agent=USER_AGENT)

    def close(self) -> None:
        """Release pooled connections (one GitLabApi serves one publish run or one check)."""
        self._gl.session.close()

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        from forge_app.web.metrics import forge_request

        self.requests_sent += 1
        forge_request("gitlab", response.status_code)
        self.budget.observe(response.headers, status=response.status_code)
        if response.is_redirect and self.redirected_to is None:
            target = str(response.headers.get("Location", ""))
            root = target.split("/api/v4", 1)[0] if "/api/v4" in target else None
            if root and root.rstrip("/") != self.base_url:
                self.redirected_to = root.rstrip("/")
        if response.status_code == 429:
            raise _RateLimitedSignal(_retry_after(response.headers))
        if response.is_redirect and response.request.method not in ("GET", "HEAD"):
            raise _RedirectedWriteSignal(response.status_code, str(response.headers.get("Location", "")))

    def _call(self, fn: Callable[[], T]) -> T:
        self.budget.check()  # RetryLater before a request the forge would refuse
        try:
            return fn()
        except Exception as exc:  # translated below; anything else is re-raised as is
            raise translate(exc) from None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        result = self._call(lambda: self._gl.http_get(path, query_data=query, obey_rate_limit=False))
        if isinstance(result, requests.Response):
            raise GitLabBadAnswer("the answer is not JSON")
        return result

    def list(self, path: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every page, following GitLab's Link headers."""
        def fetch() -> list[dict[str, Any]]:
            pages = self._gl.http_list(path, query_data=dict(query or {}), iterator=True, per_page=PER_PAGE,
                                       obey_rate_limit=False)
            return list(pages)

        items = self._call(fetch)
        return [i for i in items if isinstance(i, dict)]

    def post(self, path: str, data: dict[str, Any]) -> Any:
        result = self._call(lambda: self._gl.http_post(path, post_data=data, obey_rate_limit=False))
        return None if isinstance(result, requests.Response) else result

    def put(self, path: str, data: dict[str, Any]) -> Any:
        result = self._call(lambda: self._gl.http_put(path, post_data=data, obey_rate_limit=False))
        return None if isinstance(result, requests.Response) else result

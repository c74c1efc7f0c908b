"""One authenticated session with the Bitbucket Cloud REST API (2.0).

Redirects are followed by hand: Bitbucket answers `.../pullrequests/{id}/diff` with a
redirect to `/diff/{spec}` on its own origin, which needs the token again, while a
redirect to any other origin must never receive it. Errors become `BitbucketError`
carrying the status and Bitbucket's own message, never the token.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from forge_app.core.retry_after import parse_retry_after
from forge_app.forges import errors
from forge_app.forges.ratelimit import Budget, SharedWaits
from forge_app.jobs.errors import GiveUp, RetryLater

USER_AGENT = "forge-app (+https://github.com/forge-app/forge-app)"
MAX_REDIRECTS = 5
PAGELEN = 100  # Bitbucket's maximum page size
REDIRECTS = (301, 302, 303, 307, 308)


class BitbucketError(Exception):
    """A non-2xx answer. `message` is Bitbucket's error text (safe to log), never a secret."""

    def __init__(self, status: int, method: str, path: str, message: str, *,
                 retry_after: float | None = None, accepted_scopes: str | None = None) -> None:
        super().__init__(f"Bitbucket answered {status} to {method} {path}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        self.retry_after = retry_after
        self.accepted_scopes = accepted_scopes


def seg(value: str | int) -> str:
    """One URL path segment, escaped (slugs, commit hashes, file paths never break the route)."""
    return quote(str(value), safe="")


def display_url(url: str) -> str:
    """A URL fit for messages: any user:password@ part dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds (core.retry_after), None when absent or unreadable."""
    return parse_retry_after(value, time.time() if now is None else now)


def _error_message(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        detail = err.get("detail")
        text = err["message"] + (f" ({detail})" if isinstance(detail, str) and detail else "")
        return text[:500]
    return response.reason_phrase or "no details"


def scopes_of(response: httpx.Response) -> set[str] | None:
    """The scopes Bitbucket says the token has (`X-OAuth-Scopes`), or None when it does not say."""
    raw = response.headers.get("x-oauth-scopes")
    if raw is None:
        return None
    return {s for s in raw.replace(",", " ").split() if s}


class BitbucketApi:
    """`base_url` is the API root (e.g. https://api.bitbucket.org/2.0); paths are relative to it."""

    def __init__(self, base_url: str, token: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 30.0, waits: SharedWaits | None = None, scope: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = origin(self.base_url)
        self._token = token
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self.calls = 0  # requests sent, for logs and tests
        self.budget = Budget("Bitbucket", waits, scope)  # shared with other processes when `waits` is given

    def __repr__(self) -> str:  # never show the token
        return f"BitbucketApi({self.base_url!r})"

    async def __aenter__(self) -> BitbucketApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _headers(self, url: str) -> dict[str, str]:
        """The token goes only to the API's own origin (scheme, host and port)."""
        return {"Authorization": f"Bearer {self._token}"} if origin(url) == self._origin else {}

    def _describe(self, url: str) -> str:
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        return path[len(base_path):] if path.startswith(base_path) else path

    async def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                   json: Any = None, accept: str | None = None) -> httpx.Response:
        """The final answer after same-request redirects; any status (callers decide)."""
        url = self._url(path)
        headers = self._headers(url)
        if accept:
            headers["Accept"] = accept
        for _ in range(MAX_REDIRECTS + 1):
            self.budget.check()
            self.calls += 1
            response = await self._client.request(method, url, params=params, json=json, headers=headers)
            _count_answer(response.status_code)
            self.budget.observe(response.headers, status=response.status_code)
            if response.status_code not in REDIRECTS or method != "GET":
                return response
            location = response.headers.get("location")
            if not location:
                return response
            url = urljoin(str(response.url), location)
            params = None  # the Location carries its own query
            headers = {**self._headers(url), **({"Accept": accept} if accept else {})}
        raise BitbucketError(310, method, self._describe(url), "too many redirects")

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, accept: str | None = None, ok: tuple[int, ...] = ()) -> httpx.Response:
        """Like `send`, but a status outside 2xx (and `ok`) raises BitbucketError."""
        response = await self.send(method, path, params=params, json=json, accept=accept)
        if response.is_success or response.status_code in ok:
            return response
        raise BitbucketError(
            response.status_code, method, self._describe(str(response.url)), _error_message(response),
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            accepted_scopes=response.headers.get("x-accepted-oauth-scopes"),
        )

    async def get_bytes(self, path: str, max_bytes: int) -> bytes | None:
        """A raw body (a file), following same-request redirects like `send`, read as a stream:
        None on 404 or beyond `max_bytes`; another non-2xx status raises BitbucketError."""
        url = self._url(path)
        for _ in range(MAX_REDIRECTS + 1):
            self.calls += 1
            async with self._client.stream("GET", url, headers=self._headers(url)) as response:
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    url = urljoin(str(response.url), response.headers["location"])
                    continue
                if response.status_code == 404:
                    return None
                if not response.is_success:
                    await response.aread()
                    raise BitbucketError(
                        response.status_code, "GET", self._describe(str(response.url)), _error_message(response),
                        retry_after=retry_after_seconds(response.headers.get("retry-after")),
                        accepted_scopes=response.headers.get("x-accepted-oauth-scopes"))
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    return None
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        raise BitbucketError(310, "GET", self._describe(url), "too many redirects")

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.request("GET", path, params=params)).json()

    async def get_text(self, path: str) -> str:
        return (await self.request("GET", path, accept="text/plain")).text

    async def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated list, following `next` links (asks for 100 per page)."""
        url: str | None = path
        query: Mapping[str, Any] | None = {"pagelen": PAGELEN, **(params or {})}
        seen: set[str] = set()
        while url:
            page = await self.get_json(url, query)
            for item in page.get("values") or []:
                yield item
            nxt = page.get("next")
            if not isinstance(nxt, str) or nxt in seen:
                break
            seen.add(nxt)
            url, query = nxt, None


def job_error(exc: BitbucketError, where: str) -> RetryLater | GiveUp:
    """What the job worker should do about a failed call, in the one vocabulary of forges/errors.py."""
    wanted = f" (Bitbucket wants: {exc.accepted_scopes})" if exc.accepted_scopes else ""
    return errors.job_error("Bitbucket", exc.status, f"{exc.method} {exc.path} for {where}", detail=exc.message,
                            retry_after=exc.retry_after, advice={
        401: f"Bitbucket refused the access token for {where} (401): it is invalid, expired or revoked; replace "
             "the connection with a new token",
        403: f"the access token for {where} may not {exc.method} {exc.path} (403){wanted}; it needs the "
             "pullrequest:write (Pull requests: Write) and repository (Repositories: Read) scopes",
        404: f"Bitbucket has no {exc.path} for {where} (404), or the token cannot see it",
    })


def transport_error(exc: httpx.HTTPError, base_url: str) -> RetryLater:
    return RetryLater(f"Bitbucket at {display_url(base_url)} could not be reached ({type(exc).__name__}); "
                      "retrying later")


def _count_answer(status: int) -> None:
    from forge_app.web.metrics import forge_request

    forge_request("bitbucket", status)

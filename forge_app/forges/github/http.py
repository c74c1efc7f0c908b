"""Calling GitHub through gidgethub (httpx backend), as the app or as one installation.

Every call goes to settings.github_api_url. What this layer adds to gidgethub:
- rate limits (403/429 with `retry-after`, or `x-ratelimit-remaining: 0` with
  `x-ratelimit-reset`) become `RetryLater(delay)`, so the job waits and nothing is dropped;
- a 401 on an installation token drops the cached token, fetches a new one and retries once;
- a client is bound to ONE installation: its token is never sent for another's repository.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from gidgethub import HTTPException
from gidgethub.httpx import GitHubAPI

from forge_app import __version__
from forge_app.config import Settings
from forge_app.core.retry_after import parse_retry_after
from forge_app.forges import errors
from forge_app.forges.github.credentials import AppCredentials
from forge_app.forges.github.tokens import InstallationTokens, app_jwt
from forge_app.forges.ratelimit import Budget
from forge_app.jobs.errors import GiveUp, RetryLater
from storage import Storage

log = logging.getLogger(__name__)

API_VERSION_HEADERS = {"X-GitHub-Api-Version": "2022-11-28"}
DEFAULT_RATE_LIMIT_WAIT = 60.0
APP_SCOPE = "github:app"


class GitHubError(Exception):
    """GitHub answered something this adapter cannot use (the message never holds a secret)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def graphql_url(api_url: str) -> str:
    """api.github.com/graphql, or {host}/api/graphql for GitHub Enterprise Server's /api/v3."""
    api_url = api_url.rstrip("/")
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/v3")] + "/graphql"
    return api_url + "/graphql"


def _header(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
        if value is None:
            value = {k.lower(): v for k, v in dict(headers).items()}.get(name)
    except Exception:  # pragma: no cover - exotic mapping
        return None
    return None if value is None else str(value)


def rate_limit_delay(status: int, headers: Any, message: str = "", *, now: float | None = None) -> float | None:
    """Seconds to wait when GitHub says we are rate limited; None when it is another error."""
    if status not in (403, 429):
        return None
    waited = parse_retry_after(_header(headers, "retry-after"), now if now is not None else time.time(), minimum=1.0)
    if waited is not None:
        return waited
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        if reset and reset.strip().isdigit():
            return max(1.0, float(reset) - (now if now is not None else time.time()) + 1.0)
        return DEFAULT_RATE_LIMIT_WAIT
    if status == 429 or "rate limit" in message.lower():
        return DEFAULT_RATE_LIMIT_WAIT  # a secondary limit without headers: GitHub says wait a minute
    return None


def status_of(exc: HTTPException) -> int:
    return int(exc.status_code)


def job_error(exc: HTTPException, what: str) -> RetryLater | GiveUp:
    """What a failed GitHub call means to the job, in the one vocabulary of forges/errors.py (rate
    limits were already turned into RetryLater by the calls themselves)."""
    status = status_of(exc)
    return errors.job_error("GitHub", status, what, detail=str(exc),
                            advice={s: f"GitHub answered {s} to {what}: {exc}" for s in (400, 403, 404, 410, 422)})


def open_http() -> httpx.AsyncClient:
    """One HTTP client per job: jobs may run on different event loops (worker, tests)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)


async def _count_answer(response: httpx.Response) -> None:
    from forge_app.web.metrics import forge_request

    forge_request("github", response.status_code)


class GitHubApi:
    """One job's access to GitHub: app calls with a JWT, installation calls with its token."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, storage: Storage, credentials: AppCredentials,
                 installation_id: int | None = None) -> None:
        if not credentials.can_authenticate:
            raise GiveUp("no GitHub App is configured (run `forge-app github setup` or set GITHUB_APP_ID and "
                         "GITHUB_PRIVATE_KEY)")
        self._http = http
        self._settings = settings
        self._credentials = credentials
        self.base_url = settings.github_api_url.rstrip("/")
        self.requester = f"forge-app/{__version__}"
        self.installation_id = installation_id
        self.tokens = InstallationTokens(storage, settings.secret_key, self._create_token)
        self._token: str | None = None
        self.requests = 0  # HTTP requests this job made (every page counts), for logs and tests
        # Rate-limit waits are shared by every process through storage: per installation token, and the
        # app's own (JWT) budget apart.
        self.budget = Budget("GitHub", storage, self._scope())
        self.app_budget = Budget("GitHub", storage, APP_SCOPE)
        http.event_hooks["request"].append(self._count)
        http.event_hooks["response"].append(_count_answer)
        http.event_hooks["response"].append(self._watch_budget)

    # plumbing -------------------------------------------------------------------------
    def _gh(self, token: str | None = None) -> GitHubAPI:
        return GitHubAPI(self._http, self.requester, oauth_token=token, base_url=self.base_url)

    async def _count(self, request: httpx.Request) -> None:
        self.requests += 1

    def _scope(self) -> str | None:
        return f"github:installation:{self.installation_id}" if self.installation_id is not None else None

    async def _watch_budget(self, response: httpx.Response) -> None:
        auth = response.request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):  # the app's JWT: the app's budget, not an installation's
            self.app_budget.observe(response.headers, status=response.status_code)
            return
        self.budget.scope = self._scope()
        self.budget.observe(response.headers, status=response.status_code)

    async def _send(self, gh: GitHubAPI, method: str, url: str, url_vars: dict[str, Any] | None, data: Any,
                    jwt: str | None = None, accept: str | None = None) -> Any:
        kwargs: dict[str, Any] = {"extra_headers": dict(API_VERSION_HEADERS)}
        if jwt is not None:
            kwargs["jwt"] = jwt
        if accept is not None:
            kwargs["accept"] = accept
        if method == "GET":
            return await gh.getitem(url, url_vars or {}, **kwargs)
        if method == "POST":
            return await gh.post(url, url_vars or {}, data=data, **kwargs)
        if method == "PATCH":
            return await gh.patch(url, url_vars or {}, data=data, **kwargs)
        if method == "PUT":
            return await gh.put(url, url_vars or {}, data=data, **kwargs)
        if method == "DELETE":
            return await gh.delete(url, url_vars or {}, data=data, **kwargs)
        raise ValueError(f"unsupported method {method}")

    @staticmethod
    def _raise_if_rate_limited(exc: HTTPException, what: str) -> None:
        delay = rate_limit_delay(status_of(exc), exc.headers, str(exc))
        if delay is not None:
            raise RetryLater(f"GitHub rate limit on {what}; retrying in {int(delay)} s", delay) from None

    # as the app (JWT) -----------------------------------------------------------------
    async def as_app(self, method: str, url: str, url_vars: dict[str, Any] | None = None, data: Any = b"") -> Any:
        assert self._credentials.app_id and self._credentials.private_key
        self.app_budget.check()
        token = app_jwt(self._credentials.app_id, self._credentials.private_key)
        try:
            return await self._send(self._gh(), method, url, url_vars, data, jwt=token)
        except HTTPException as exc:
            self._raise_if_rate_limited(exc, f"{method} {url}")
            if status_of(exc) == 401:
                raise GiveUp("GitHub refused the app's JWT: check GITHUB_APP_ID, the private key and this "
                             "server's clock") from None
            raise

    async def _create_token(self, installation_id: int) -> dict[str, Any]:
        try:
            return await self.as_app("POST", "/app/installations/{installation_id}/access_tokens",
                                     {"installation_id": installation_id})
        except HTTPException as exc:
            if status_of(exc) in (403, 404):
                raise GiveUp(f"GitHub refused a token for installation {installation_id} "
                             f"({status_of(exc)}): the app was uninstalled or suspended") from None
            raise

    async def installation_for(self, owner: str, repo: str) -> dict[str, Any] | None:
        """The installation covering a repository, or None when the app is not installed there."""
        try:
            return await self.as_app("GET", "/repos/{owner}/{repo}/installation", {"owner": owner, "repo": repo})
        except HTTPException as exc:
            if status_of(exc) == 404:
                return None
            raise

    # as the installation --------------------------------------------------------------
    async def _installation_token(self) -> str:
        if self.installation_id is None:
            raise GiveUp("no GitHub installation is known for this repository")
        if self._token is None:
            self._token = await self.tokens.get(self.installation_id)
        return self._token

    async def _renew_token(self) -> str:
        assert self.installation_id is not None
        log.info("GitHub refused the cached token of installation %s; fetching a new one", self.installation_id)
        self.tokens.drop(self.installation_id)
        self._token = await self.tokens.fresh(self.installation_id)
        return self._token

    async def call(self, method: str, url: str, url_vars: dict[str, Any] | None = None, data: Any = b"", *,
                   accept: str | None = None) -> Any:
        """One REST call as the installation (`accept`: a media type other than the default JSON)."""
        self.budget.scope = self._scope()
        self.budget.check()
        token = await self._installation_token()
        for attempt in (1, 2):
            try:
                return await self._send(self._gh(token), method, url, url_vars, data, accept=accept)
            except HTTPException as exc:
                self._raise_if_rate_limited(exc, f"{method} {url}")
                if status_of(exc) == 401 and attempt == 1:
                    token = await self._renew_token()
                    continue
                raise
        raise AssertionError("unreachable")

    async def paginate(self, url: str, url_vars: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a list endpoint, following `Link: rel="next"` (gidgethub's getiter)."""
        self.budget.scope = self._scope()
        self.budget.check()
        token = await self._installation_token()
        for attempt in (1, 2):
            try:
                return [item async for item in self._gh(token).getiter(
                    url, url_vars or {}, extra_headers=dict(API_VERSION_HEADERS))]
            except HTTPException as exc:
                self._raise_if_rate_limited(exc, f"GET {url}")
                if status_of(exc) == 401 and attempt == 1:
                    token = await self._renew_token()  # the list is read again from its first page
                    continue
                raise
        raise AssertionError("unreachable")

    async def graphql(self, query: str, **variables: Any) -> Any:
        """A GraphQL query or mutation as the installation; errors raise GitHubError."""
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        answer = await self.call("POST", graphql_url(self.base_url), None, payload)
        if not isinstance(answer, dict):
            raise GitHubError("GitHub's GraphQL API answered something that is not a JSON object")
        errors = answer.get("errors")
        if errors:
            if any(isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors):
                raise RetryLater("GitHub GraphQL rate limit", DEFAULT_RATE_LIMIT_WAIT)
            first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
            raise GitHubError(f"GitHub GraphQL error: {first.get('message')}", None)
        return answer.get("data")

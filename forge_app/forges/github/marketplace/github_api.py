"""The few GitHub calls of the Marketplace side, over plain httpx.

- the listing (`/marketplace_listing/...`, or `/marketplace_listing/stubbed/...` with
  FORGE_APP_MARKETPLACE_STUBBED=1) with the App's JWT, 100 per page, every page;
- the customer's own view (`/user`, `/user/installations`, `/user/marketplace_purchases`)
  with the user token of the Setup URL's authorization;
- revoking a user token (`DELETE /applications/{client_id}/token`, basic auth with the
  App's client id and secret).
Errors become MarketplaceApiError with the status; no token ever appears in a message.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from forge_app import __version__
from forge_app.config import Settings
from forge_app.forges.github.credentials import AppCredentials, load_credentials, stored_app
from forge_app.forges.github.tokens import app_jwt
from forge_app.security.crypto import SecretsUnavailable, decrypt
from storage import Storage

PER_PAGE = 100
MAX_PAGES = 10_000
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "User-Agent": f"forge-app/{__version__}"}


class MarketplaceApiError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def client_credentials(settings: Settings, storage: Storage) -> tuple[str | None, str | None]:
    """The App's OAuth client id and secret: the environment first, then the manifest flow's record."""
    stored = stored_app(storage)
    client_id = settings.github_client_id or stored.get("client_id")
    secret = settings.github_client_secret
    if not secret and stored.get("client_secret_enc"):
        try:
            secret = decrypt(settings.secret_key, stored["client_secret_enc"])
        except SecretsUnavailable:
            secret = None
    return client_id, secret


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    try:
        message = str(response.json().get("message") or "")[:200]
    except Exception:
        message = ""
    raise MarketplaceApiError(f"GitHub answered {response.status_code} to {what}"
                              + (f": {message}" if message else ""), response.status_code)


class MarketplaceApi:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, storage: Storage) -> None:
        self.http = http
        self.settings = settings
        self.storage = storage
        self.base = settings.github_api_url.rstrip("/")
        self.listing = "/marketplace_listing/stubbed" if settings.marketplace_stubbed else "/marketplace_listing"
        self.requests = 0

    async def _get(self, url: str, headers: dict[str, str], what: str) -> httpx.Response:
        self.requests += 1
        try:
            response = await self.http.get(url, headers={**HEADERS, **headers})
        except httpx.HTTPError as exc:
            raise MarketplaceApiError(f"GitHub could not be reached for {what}: {type(exc).__name__}") from None
        _raise_for(response, what)
        return response

    def _jwt(self) -> dict[str, str]:
        creds: AppCredentials = load_credentials(self.settings, self.storage)
        if not creds.can_authenticate:
            raise MarketplaceApiError("no GitHub App is configured (GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or "
                                      "`forge-app github setup`): the listing API needs the App's JWT")
        assert creds.app_id and creds.private_key
        return {"Authorization": f"Bearer {app_jwt(creds.app_id, creds.private_key)}"}

    async def _all_pages(self, path: str, headers: dict[str, str]) -> list[Any]:
        url: str | None = f"{self.base}{path}?per_page={PER_PAGE}"
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = await self._get(url, headers, f"GET {path}")
            page = response.json()
            if not isinstance(page, list):
                raise MarketplaceApiError(f"GitHub answered GET {path} with something that is not a list")
            items.extend(page)
            m = _NEXT.search(response.headers.get("link", ""))
            url = m.group(1) if m else None
        raise MarketplaceApiError(f"GET {path} kept answering more pages than forge-app reads ({MAX_PAGES})")

    # the listing, as the App ---------------------------------------------------------
    async def plans(self) -> list[dict[str, Any]]:
        return await self._all_pages(f"{self.listing}/plans", self._jwt())

    async def plan_accounts(self, plan_id: int) -> list[dict[str, Any]]:
        return await self._all_pages(f"{self.listing}/plans/{int(plan_id)}/accounts", self._jwt())

    # the customer, with their user token ----------------------------------------------
    async def user_get(self, path: str, token: str) -> Any:
        response = await self._get(f"{self.base}{path}", {"Authorization": f"Bearer {token}"}, f"GET {path}")
        return response.json()

    async def user_pages(self, path: str, token: str) -> list[Any]:
        return await self._all_pages(path, {"Authorization": f"Bearer {token}"})

    async def user_installations(self, token: str) -> list[dict[str, Any]]:
        """`GET /user/installations` answers an object holding the list; all pages."""
        url: str | None = f"{self.base}/user/installations?per_page={PER_PAGE}"
        out: list[dict[str, Any]] = []
        while url is not None:
            response = await self._get(url, {"Authorization": f"Bearer {token}"}, "GET /user/installations")
            doc = response.json()
            out.extend(i for i in (doc.get("installations") or []) if isinstance(i, dict))
            m = _NEXT.search(response.headers.get("link", ""))
            url = m.group(1) if m else None
        return out

    async def revoke_user_token(self, token: str) -> None:
        """Revoke one user token; a token GitHub no longer knows (404) counts as revoked."""
        client_id, secret = client_credentials(self.settings, self.storage)
        if not client_id or not secret:
            raise MarketplaceApiError("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are needed to revoke user tokens")
        self.requests += 1
        try:
            response = await self.http.request(
                "DELETE", f"{self.base}/applications/{client_id}/token", headers=HEADERS, auth=(client_id, secret),
                json={"access_token": token})
        except httpx.HTTPError as exc:
            raise MarketplaceApiError(f"GitHub could not be reached to revoke a token: {type(exc).__name__}") from None
        if response.status_code == 404:
            return
        _raise_for(response, "DELETE /applications/{client_id}/token")


def open_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)

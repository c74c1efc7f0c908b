"""Calling Slack's Web API for one installation, through slack_sdk's WebClient.

slack_sdk does the HTTP, the 429 `Retry-After` wait (RateLimitErrorRetryHandler) and
connection retries; here each failure becomes what the job system needs:

- `invalid_auth`, `token_revoked`, `account_inactive` → installation `revoked`, no retries;
- `missing_scope` → installation `needs_reinstall`, no retries;
- `token_expired` (token rotation) → refresh once and call again; tokens are also
  refreshed five minutes before they expire;
- still 429 after the SDK's retry → RetryLater(Retry-After); 5xx or unreachable → RetryLater;
- any other `ok: false` → SlackError(code), for the caller to decide (channel errors).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from forge_app.config import Settings
from forge_app.jobs.errors import RetryLater
from forge_app.security.crypto import decrypt, encrypt
from storage import Storage
from storage.slack import SlackInstallation

log = logging.getLogger(__name__)

REVOKED = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed"})
REFRESH_MARGIN = 300.0


class SlackError(Exception):
    """Slack answered `ok: false` with `code` (and it is not about the token)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


class InstallationUnusable(Exception):
    """The installation cannot call Slack until someone reinstalls (status already saved)."""

    def __init__(self, status: str, code: str) -> None:
        super().__init__(f"slack installation {status}: {code}")
        self.status = status
        self.code = code


INLINE_WAIT_MAX = 2.0


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """The SDK's 429 handler sleeps `Retry-After` inside the call; only short waits are spent
    there, so a long one never holds the worker: the job is retried at `Retry-After` instead."""

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        for k, v in (response.headers or {}).items():
            if k.lower() == "retry-after":
                raw = v[0] if isinstance(v, list) else v
                try:
                    return float(raw) <= INLINE_WAIT_MAX
                except (TypeError, ValueError):
                    return False
        return True


def web_client(settings: Settings, token: str | None = None, *, rate_limit_retries: int = 1) -> WebClient:
    return WebClient(
        token=token, base_url=settings.slack_api_url.rstrip("/") + "/", timeout=10,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1),
                        ShortRateLimitRetry(max_retry_count=rate_limit_retries)],
    )


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    for k, v in headers.items():
        if k.lower() == "retry-after":
            raw = v[0] if isinstance(v, list) else v
            try:
                return max(1.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


async def raw_call(call: Callable[[], Any]) -> dict[str, Any]:
    """Run one blocking SDK call in a thread; map transport failures to RetryLater / SlackError."""
    try:
        response = await asyncio.to_thread(call)
    except SlackApiError as exc:
        status = getattr(exc.response, "status_code", 200)
        if status == 429:
            raise RetryLater("Slack rate limit (429)", _retry_after(exc)) from None
        if status >= 500:
            raise RetryLater(f"Slack answered HTTP {status}") from None
        data = getattr(exc.response, "data", None)
        code = data.get("error") if isinstance(data, dict) else None
        raise SlackError(code or f"http_{status}", str(code or status)) from None
    except (SlackRequestError, URLError, OSError, TimeoutError) as exc:
        raise RetryLater(f"Slack unreachable: {type(exc).__name__}") from None
    data = response.data if hasattr(response, "data") else response
    return data if isinstance(data, dict) else {}


class SlackInstallClient:
    """Web API calls with one installation's bot token (kept fresh, never logged)."""

    def __init__(self, settings: Settings, storage: Storage, installation: SlackInstallation) -> None:
        self.settings = settings
        self.storage = storage
        self.installation = installation

    def _unusable(self, status: str, code: str) -> InstallationUnusable:
        self.storage.update_slack_installation(self.installation.id, status=status)
        log.warning("slack workspace %s: %s (%s)", self.installation.team_id, status, code)
        return InstallationUnusable(status, code)

    async def refresh(self) -> str:
        inst = self.installation
        if not inst.refresh_token:
            raise self._unusable("revoked", "token_expired")
        refresh_token = decrypt(self.settings.secret_key, inst.refresh_token)
        client = web_client(self.settings)
        try:
            data = await raw_call(lambda: client.oauth_v2_access(
                client_id=self.settings.slack_client_id or "", client_secret=self.settings.slack_client_secret or "",
                grant_type="refresh_token", refresh_token=refresh_token))
        except SlackError as exc:
            if exc.code in ("invalid_refresh_token", "invalid_grant", *REVOKED):
                raise self._unusable("revoked", exc.code) from None
            raise
        token = data.get("access_token")
        if not isinstance(token, str):
            raise RetryLater("Slack's refresh answer had no access_token")
        expires = data.get("expires_in")
        fields: dict[str, Any] = {
            "bot_token": encrypt(self.settings.secret_key, token),
            "token_expires_at": time.time() + float(expires) if isinstance(expires, (int, float)) else None,
        }
        if isinstance(data.get("refresh_token"), str):
            fields["refresh_token"] = encrypt(self.settings.secret_key, data["refresh_token"])
        self.storage.update_slack_installation(inst.id, **fields)
        fresh = self.storage.slack_installation(inst.id)
        if fresh is not None:
            self.installation = fresh
        return token

    async def token(self) -> str:
        inst = self.installation
        if inst.status == "revoked":
            raise InstallationUnusable("revoked", "revoked")
        if inst.refresh_token and inst.token_expires_at and inst.token_expires_at - time.time() < REFRESH_MARGIN:
            return await self.refresh()
        return decrypt(self.settings.secret_key, inst.bot_token)

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """`method` is a WebClient method name, e.g. "chat_postMessage"."""
        token = await self.token()
        for attempt in (1, 2):
            client = web_client(self.settings, token)
            fn = getattr(client, method)
            try:
                return await raw_call(functools.partial(fn, **kwargs))
            except SlackError as exc:
                if exc.code == "token_expired" and attempt == 1:
                    token = await self.refresh()
                    continue
                if exc.code in REVOKED or exc.code == "token_expired":
                    raise self._unusable("revoked", exc.code) from None
                if exc.code == "missing_scope":
                    raise self._unusable("needs_reinstall", exc.code) from None
                raise
        raise AssertionError("unreachable")

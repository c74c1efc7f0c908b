"""App JWTs and installation access tokens.

A JWT proves we are the app (RS256, issued 60 s in the past for clock drift, expiring
well inside GitHub's 10-minute limit). Installation tokens last an hour; they are
cached per installation id, encrypted with FORGE_APP_SECRET_KEY, and replaced a few
minutes before they expire or as soon as GitHub refuses one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import jwt

from forge_app.security.crypto import SecretsUnavailable, decrypt, encrypt
from storage import Storage

log = logging.getLogger(__name__)

JWT_BACKDATE = 60  # GitHub's advice: iat 60 s in the past, so a clock slightly ahead of GitHub's still works
JWT_LIFETIME = 9 * 60  # from the backdated iat: expires 8 minutes from now, never beyond 10
REFRESH_MARGIN = 5 * 60  # a cached token with less left than this is replaced


def app_jwt(app_id: str, private_key: str, *, now: float | None = None) -> str:
    """The app's RS256 JWT, built here rather than by `gidgethub.apps.get_jwt`: upstream stopped
    backdating `iat`, so with a clock a little ahead of GitHub's every call failed with "JWT
    issued in the future". `iat` is 60 s in the past and `exp` 9 minutes after it, keeping
    exp - iat under GitHub's 10-minute limit whatever the skew."""
    issued = int(now if now is not None else time.time()) - JWT_BACKDATE
    claims = {"iat": issued, "exp": issued + JWT_LIFETIME, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm="RS256")


def expiry_epoch(expires_at: str | None) -> float:
    """GitHub's `expires_at` (ISO 8601, `Z`); one hour from now when absent or unreadable."""
    if expires_at:
        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time() + 3600


Fetch = Callable[[int], Awaitable[dict[str, Any]]]


class InstallationTokens:
    """Installation tokens for one job, cached in storage between jobs."""

    def __init__(self, storage: Storage, secret_key: str | None, fetch: Fetch) -> None:
        self._storage = storage
        self._secret_key = secret_key
        self._fetch = fetch

    def cached(self, installation_id: int, *, now: float | None = None) -> str | None:
        if not self._secret_key:
            return None
        row = self._storage.github_token(installation_id)
        if row is None:
            return None
        token_enc, expires = row
        if expires - (now if now is not None else time.time()) <= REFRESH_MARGIN:
            return None
        try:
            return decrypt(self._secret_key, token_enc)
        except SecretsUnavailable:
            self._storage.drop_github_token(installation_id, token_enc)
            return None

    async def get(self, installation_id: int) -> str:
        return self.cached(installation_id) or await self.fresh(installation_id)

    async def fresh(self, installation_id: int) -> str:
        """Ask GitHub for a new token and cache it (encrypted) when a secret key is configured."""
        answer = await self._fetch(installation_id)
        token = str(answer["token"])
        if self._secret_key:
            self._storage.save_github_token(installation_id, encrypt(self._secret_key, token),
                                            expiry_epoch(answer.get("expires_at")))
        return token

    def drop(self, installation_id: int) -> None:
        self._storage.drop_github_token(installation_id)

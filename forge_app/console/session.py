"""Console sign-in sessions and CSRF tokens: stateless, HMAC-signed, no I/O.

The signing key is derived from FORGE_APP_SECRET_KEY *and* the admin token, so rotating
either one signs every console session out. A session cookie carries only an expiry
and a random id; the CSRF token is the HMAC of a per-browser nonce (its own cookie),
so every form, the sign-in form included, is bound to the browser that loaded it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SESSION_COOKIE = "forge_app_session"
NONCE_COOKIE = "forge_app_csrf"
SESSION_SECONDS = 12 * 3600
NONCE_SECONDS = 30 * 24 * 3600


def derive_key(secret_key: str | None, admin_token: str | None, fallback: bytes) -> bytes:
    """The console's signing key; `fallback` (random per process) when no secret key is set."""
    base = secret_key.encode() if secret_key else fallback
    token_digest = hashlib.sha256((admin_token or "").encode()).digest()
    return hmac.new(base, b"forge-app console session v1|" + token_digest, hashlib.sha256).digest()


def _sign(key: bytes, purpose: str, value: str) -> str:
    mac = hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_session(key: bytes, now: float | None = None) -> str:
    """A cookie value valid for SESSION_SECONDS: `<expiry>.<id>.<signature>`."""
    expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
    body = f"{expires}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_sign(key, 'session', body)}"


def session_valid(key: bytes, value: str | None, now: float | None = None) -> bool:
    if not value or value.count(".") != 2:
        return False
    expires, sid, signature = value.split(".")
    if not expires.isdigit() or not hmac.compare_digest(signature, _sign(key, "session", f"{expires}.{sid}")):
        return False
    return int(expires) > (now if now is not None else time.time())


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def csrf_token(key: bytes, nonce: str) -> str:
    return _sign(key, "csrf", nonce)


def csrf_valid(key: bytes, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(token, csrf_token(key, nonce))


def token_matches(expected: str | None, given: str | None) -> bool:
    """The admin token, compared in constant time; never true when none is configured."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


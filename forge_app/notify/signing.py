"""Standard Webhooks signatures (https://www.standardwebhooks.com): `whsec_` secrets and
`webhook-id` / `webhook-timestamp` / `webhook-signature` headers.

Receivers verify with any Standard Webhooks library, so the scheme is followed to the
letter: HMAC-SHA256 over "{id}.{timestamp}.{body}", keyed by the base64-decoded secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # the spec: at least 24 bytes, at most 64
MAX_KEY_BYTES = 64
GENERATED_KEY_BYTES = 32


class InvalidSecret(ValueError):
    """The secret is not `whsec_` + base64 of 24 to 64 bytes; the message never repeats it."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret (validates it)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a webhook secret must start with whsec_ followed by a base64-encoded key")
    encoded = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the part after whsec_ is not valid base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret(f"the key after whsec_ must decode to {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
                            f"not {len(key)}")
    return key


def new_message_id() -> str:
    """The `webhook-id`: fixed per delivery, reused on every retry so receivers can dedupe."""
    return f"msg_{uuid.uuid4().hex}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(message_id: str, timestamp: int, body: bytes, secret: str | None) -> dict[str, str]:
    """The Standard Webhooks headers; the signature only when there is a secret."""
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = signature(secret, message_id, timestamp, body)
    return headers

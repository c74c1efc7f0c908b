"""Encrypting forge tokens and private keys at rest, with a key derived from FORGE_APP_SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`; the key is derived with
HKDF so the operator can use any secret string of 32+ characters.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"forge-app stored secrets v1"


class SecretsUnavailable(RuntimeError):
    """No FORGE_APP_SECRET_KEY, or a stored value encrypted under another key."""


def _fernet(secret_key: str | None) -> Fernet:
    if not secret_key:
        raise SecretsUnavailable("FORGE_APP_SECRET_KEY is not set, so secrets cannot be stored or read")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret_key: str | None, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str | None, ciphertext: str) -> str:
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretsUnavailable(
            "a stored secret cannot be decrypted: FORGE_APP_SECRET_KEY differs from the one it was stored with"
        ) from None

"""The GitHub App's identity: environment variables first, then what the manifest flow stored.

Each variable (GITHUB_APP_ID, GITHUB_PRIVATE_KEY[_PATH], GITHUB_WEBHOOK_SECRET) wins
over its stored counterpart, so an operator can always override a registration.
Stored secrets are encrypted with FORGE_APP_SECRET_KEY.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from forge_app.config import Settings
from forge_app.security.crypto import SecretsUnavailable, decrypt, encrypt
from storage import Storage

log = logging.getLogger(__name__)

SETTING_KEY = "github_app"


@dataclass(frozen=True)
class AppCredentials:
    app_id: str | None
    private_key: str | None
    webhook_secret: str | None
    slug: str | None = None
    name: str | None = None

    @property
    def can_authenticate(self) -> bool:
        return bool(self.app_id and self.private_key)

    def __repr__(self) -> str:  # never print the key or the secret
        return f"AppCredentials(app_id={self.app_id!r}, slug={self.slug!r})"


def _decrypt(settings: Settings, stored: dict[str, Any], field: str) -> str | None:
    value = stored.get(field)
    if not value:
        return None
    try:
        return decrypt(settings.secret_key, value)
    except SecretsUnavailable as exc:
        log.warning("stored GitHub App %s is unusable: %s", field.removesuffix("_enc"), exc)
        return None


def stored_app(storage: Storage) -> dict[str, Any]:
    return storage.get_setting(SETTING_KEY) or {}


def load_credentials(settings: Settings, storage: Storage) -> AppCredentials:
    stored = stored_app(storage)
    stored_id = stored.get("id")
    return AppCredentials(
        app_id=settings.github_app_id or (str(stored_id) if stored_id else None),
        private_key=settings.github_private_key or _decrypt(settings, stored, "pem_enc"),
        webhook_secret=settings.github_webhook_secret or _decrypt(settings, stored, "webhook_secret_enc"),
        slug=stored.get("slug"),
        name=stored.get("name"),
    )


def save_registered_app(settings: Settings, storage: Storage, conversion: dict[str, Any]) -> dict[str, Any]:
    """Keep what GitHub answered to the manifest conversion; secrets encrypted.

    Returns the public part (id, slug, name, html_url)."""
    public = {
        "id": conversion["id"],
        "slug": conversion.get("slug"),
        "name": conversion.get("name"),
        "html_url": conversion.get("html_url"),
        "client_id": conversion.get("client_id"),
        "owner": (conversion.get("owner") or {}).get("login"),
    }
    record = dict(public)
    record["pem_enc"] = encrypt(settings.secret_key, conversion["pem"])
    if conversion.get("webhook_secret"):
        record["webhook_secret_enc"] = encrypt(settings.secret_key, conversion["webhook_secret"])
    if conversion.get("client_secret"):
        record["client_secret_enc"] = encrypt(settings.secret_key, conversion["client_secret"])
    storage.put_setting(SETTING_KEY, record)
    return public

"""A generated secret key for first runs, so `make run` works before any configuration.

When FORGE_APP_SECRET_KEY is unset, a random key is created once next to the database
(`secret.key`, mode 0600) and reused by every process that opens that database. Set the
variable in production: a key stored beside the data it protects guards less. With a database
server (PostgreSQL) the variable is required: replicas on several hosts share no directory.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from forge_app.config import ConfigError, Settings

log = logging.getLogger(__name__)
KEY_FILE = "secret.key"


def key_path(settings: Settings) -> Path | None:
    if settings.database in ("", ":memory:") or "://" in settings.database:
        return None  # a database server has no "beside the database" every process shares
    return Path(settings.database).resolve().parent / KEY_FILE


def _read_or_create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def ensure_secret_key(settings: Settings) -> Settings:
    """Settings with a secret key: the configured one, else the local generated one. Comment
    markers are signed with a key derived from it from here on (every CLI verb and `serve`
    come through here)."""
    from forge_app.core.review.render import use_secret_key

    result = _ensure_secret_key(settings)
    use_secret_key(result.secret_key)
    return result


def _ensure_secret_key(settings: Settings) -> Settings:
    if settings.secret_key:
        return settings
    path = key_path(settings)
    if path is None:
        if "://" in settings.database:
            raise ConfigError(
                "FORGE_APP_SECRET_KEY must be set when FORGE_APP_DATABASE is a database server: every serve and "
                "worker process must share the key that encrypts stored tokens and signs sessions (moving from "
                "SQLite? use the content of the secret.key file beside the old database)")
        return settings
    key = _read_or_create(path)
    if len(key) < 32:
        log.warning("%s is too short to be a secret key; set FORGE_APP_SECRET_KEY", path)
        return settings
    log.warning("FORGE_APP_SECRET_KEY is not set: using the generated key in %s (back it up with the database, "
                "or set the variable)", path)
    return replace(settings, secret_key=key)

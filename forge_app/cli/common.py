"""Shared bits of the CLI verbs: settings, storage, logging, clean error exits."""

from __future__ import annotations

import logging
import sys

from forge_app.config import ConfigError, Settings
from forge_app.logging_setup import configure_logging


class CliError(Exception):
    """Printed as `forge-app <verb>: error: <message>` with exit code 2."""


def fail(verb: str, message: str) -> int:
    print(f"forge-app {verb}: error: {message}", file=sys.stderr)
    return 2


def load_settings(verb: str) -> Settings:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings.log_level)
    from forge_app.security.local_key import ensure_secret_key

    return ensure_secret_key(settings)


def note(message: str) -> None:
    """Human notes go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr)


log = logging.getLogger("forge_app.cli")

"""Shared bits of the CLI verbs: settings, storage, logging, clean error exits."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from forge_app.config import ConfigError, Settings
from forge_app.logging_setup import configure_logging

if TYPE_CHECKING:
    from storage import Storage


class CliError(Exception):
    """Printed as `forge-app <verb>: error: <message>` with exit code 2."""


def fail(verb: str, message: str) -> int:
    print(f"forge-app {verb}: error: {message}", file=sys.stderr)
    return 2


def add_init_flag(parser: argparse.ArgumentParser) -> None:
    """`--init` on verbs that expect the server's database to exist already."""
    parser.add_argument("--init", action="store_true",
                        help="create a new, empty database if there is none at FORGE_APP_DATABASE "
                             "(default: refuse, since the server's database is expected)")


def database_label(database: str) -> str:
    """The database as a person can find it: an absolute path (a URL is shown without its password)."""
    if "://" in database:
        scheme, _, rest = database.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}" if "@" in rest else database
    return database if database == ":memory:" else str(Path(database).resolve())


def database_missing(database: str) -> bool:
    return "://" not in database and database != ":memory:" and not Path(database).exists()


def load_settings(verb: str, *, expect_database: bool = False, init: bool = False) -> Settings:
    """The settings every verb shares. With `expect_database`, say which database is used, and
    refuse (CliError) to create one that does not exist unless `init`: a verb run from another
    directory must not silently write to a fresh ./data/forge-app.db the server never reads."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings.log_level)
    if expect_database:
        label = database_label(settings.database)
        if database_missing(settings.database) and not init:
            raise CliError(
                f"no database at {label}: this verb works on the database `forge-app serve` uses. Run it where "
                "the server runs, with the same FORGE_APP_DATABASE (and FORGE_APP_SECRET_KEY), or pass --init "
                "to create a new one here")
        note(f"forge-app {verb}: using database {label}" + (" (new)" if database_missing(settings.database) else ""))
    from forge_app.security.local_key import ensure_secret_key

    try:
        return ensure_secret_key(settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def open_database(settings: Settings) -> Storage:
    from storage import open_storage

    return open_storage(settings.database)


def note(message: str) -> None:
    """Human notes go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr)


log = logging.getLogger("forge_app.cli")

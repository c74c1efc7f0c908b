"""A fresh database for the scale test: PostgreSQL when one answers, dropped afterwards.

`FORGE_APP_TEST_POSTGRES_URL` names the server (default `postgresql://postgres@127.0.0.1:5432/postgres`);
without an answer the test is skipped, saying so. `FORGE_APP_TEST_SCALE_SQLITE=1` runs it on a SQLite
file instead (one host's processes sharing it in WAL mode), for a machine without PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("FORGE_APP_TEST_POSTGRES_URL") or DEFAULT_URL


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def postgres_answers() -> str | None:
    """None when the test server answers, else why not (for the skip message)."""
    import importlib.util

    if importlib.util.find_spec("storage.postgres") is None:
        return "this storage has no PostgreSQL backend"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    url = server_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL answers at {urlsplit(url).hostname}:{urlsplit(url).port} ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the test server (skips the test without one), dropped afterwards."""
    why_not = postgres_answers()
    if why_not is not None:
        pytest.skip(f"{why_not}: PostgreSQL test skipped")
    import psycopg

    admin_url = server_url()
    name = f"forge_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(admin_url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scale_database(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("FORGE_APP_TEST_SCALE_SQLITE") == "1":
        yield str(tmp_path / "scale.db")
        return
    with postgres_database() as url:
        yield url

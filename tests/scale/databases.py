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


@contextlib.contextmanager
def scale_database(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("FORGE_APP_TEST_SCALE_SQLITE") == "1":
        yield str(tmp_path / "scale.db")
        return
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: the PostgreSQL scale test is skipped")
    admin_url = server_url()
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL answers at {urlsplit(admin_url).hostname}:{urlsplit(admin_url).port}: "
                    f"scale test skipped ({type(exc).__name__})")
    name = f"forge_scale_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(admin_url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

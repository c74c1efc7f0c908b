"""Shared test fixtures: a migrated temporary database, the app, a client, tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from forge_app.config import Settings
from forge_app.web.app import create_app
from storage import Storage, open_storage

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SECRET_KEY = "test-secret-key-0123456789abcdef-0123456789"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database=str(tmp_path / "forge-app.db"),
        secret_key=SECRET_KEY,
        admin_token=ADMIN_TOKEN,
        public_url="http://testserver",
        allow_private_targets=True,
    )


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    s = open_storage(settings.database)
    yield s
    s.close()


@pytest.fixture
def app(settings: Settings, storage: Storage):
    return create_app(settings, storage, run_worker=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def upload_token(storage: Storage) -> str:
    return storage.create_upload_token("github", "octo/demo")


def drain(app) -> int:
    """Run every due job of the app's worker now (tests run without the background worker)."""
    return asyncio.run(app.state.worker.drain())


@pytest.fixture(autouse=True)
def _unconfigured_marker_key() -> Iterator[None]:
    """Comment markers are signed with a process-wide key; a test that configures one (through
    ensure_secret_key) must not change the bodies later tests (and cassettes) expect."""
    from forge_app.core.review.render import use_secret_key

    use_secret_key(None)
    yield
    use_secret_key(None)

"""Fixtures for the notification tests: a loopback receiver and apps with other settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from forge_app.config import Settings
from forge_app.web.app import create_app
from storage import Storage
from tests.notify.helpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def client_with(settings: Settings, storage: Storage) -> Iterator[Callable[..., TestClient]]:
    """`client_with(allow_private_targets=False)`: a client of an app with changed settings."""
    clients: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        app = create_app(dataclasses.replace(settings, **changes), storage, run_worker=False)
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)

"""Fixtures for the GitLab adapter tests: one fake GitLab server per session, fresh state per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gitlab.fake_gitlab import FakeGitLab, FakeServer


@pytest.fixture(scope="session")
def gitlab_server() -> Iterator[FakeServer]:
    server = FakeServer(FakeGitLab()).start()
    yield server
    server.stop()


@pytest.fixture
def gitlab(gitlab_server: FakeServer) -> Iterator[FakeGitLab]:
    """The fake's state, reset; every test fails if the app sent a request outside the contract."""
    fake = gitlab_server.fake
    with fake.lock:
        fake.reset()
    yield fake
    assert fake.violations == [], fake.violations

"""Fixtures for the GitHub tests: a fake GitHub on loopback and settings that point at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from forge_app.config import Settings
from tests.github.fake_github import FakeGitHub, ServerThread
from tests.github.gh_helpers import WEBHOOK_SECRET


@pytest.fixture(scope="session")
def fake_server() -> Iterator[tuple[FakeGitHub, ServerThread]]:
    fake = FakeGitHub()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    yield fake, server
    server.stop()


@pytest.fixture
def fake_github(fake_server: tuple[FakeGitHub, ServerThread]) -> Iterator[FakeGitHub]:
    fake, _ = fake_server
    fake.reset()
    yield fake
    assert fake.violations == [], "requests GitHub would refuse:\n" + "\n".join(fake.violations)


@pytest.fixture
def settings(settings: Settings, fake_github: FakeGitHub) -> Settings:
    return dataclasses.replace(
        settings,
        github_app_id=str(fake_github.app_id),
        github_private_key=fake_github.private_key,
        github_webhook_secret=WEBHOOK_SECRET,
        github_api_url=fake_github.url,
        github_web_url="https://github.example",
    )

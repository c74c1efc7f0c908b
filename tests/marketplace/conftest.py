"""Marketplace tests: the fake GitHub (with its listing), and settings with a plans file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from forge_app.config import Settings
from forge_app.core.plans import parse_plans
from tests.github import conftest as github_fixtures
from tests.github.fake_github import FakeGitHub
from tests.github.gh_helpers import WEBHOOK_SECRET
from tests.marketplace.mp_helpers import LISTING_URL, MARKETPLACE_SECRET, PLANS

# The GitHub tests' fake GitHub, served once per session and reset for each test.
fake_server = github_fixtures.fake_server
fake_github = github_fixtures.fake_github


@pytest.fixture
def plans_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(PLANS))
    return path


@pytest.fixture
def settings(settings: Settings, fake_github: FakeGitHub, plans_file: Path) -> Settings:
    return dataclasses.replace(
        settings,
        github_app_id=str(fake_github.app_id),
        github_private_key=fake_github.private_key,
        github_webhook_secret=WEBHOOK_SECRET,
        github_api_url=fake_github.url,
        github_web_url=fake_github.url,
        github_marketplace_webhook_secret=MARKETPLACE_SECRET,
        github_client_id=fake_github.client_id,
        github_client_secret=fake_github.client_secret,
        marketplace_plans=parse_plans(plans_file.read_text()),
        marketplace_url=LISTING_URL,
    )

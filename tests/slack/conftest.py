"""The Slack app under test against the fake Slack on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from forge_app.web.app import create_app
from tests.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, FakeSlack
from tests.support.live_server import serve


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[tuple[FakeSlack, str]]:
    holder = {"fake": FakeSlack()}

    async def asgi(scope, receive, send):  # the current test's fake behind one server
        await holder["fake"].app()(scope, receive, send)

    with serve(asgi, lifespan="off") as url:
        yield holder, url  # type: ignore[misc]


@pytest.fixture
def fake_slack(_fake_server) -> FakeSlack:
    holder, url = _fake_server
    fake = FakeSlack()
    fake.base_url = url
    holder["fake"] = fake
    yield fake
    assert fake.violations == [], fake.violations


@pytest.fixture
def slack_settings(settings, fake_slack):
    return replace(settings, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
                   slack_signing_secret=SIGNING_SECRET, slack_api_url=f"{fake_slack.base_url}/api",
                   slack_authorize_url="https://slack.test/oauth/v2/authorize")


@pytest.fixture
def slack_app(slack_settings, storage):
    return create_app(slack_settings, storage, run_worker=False)


@pytest.fixture
def slack_client(slack_app) -> Iterator[TestClient]:
    with TestClient(slack_app) as c:
        yield c


def signed(body: bytes, *, secret: str = SIGNING_SECRET, ts: int | None = None,
           content_type: str = "application/json") -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sig, "Content-Type": content_type}


def run_jobs(app) -> int:
    return asyncio.run(app.state.worker.drain())

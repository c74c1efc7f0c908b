"""GitHub Enterprise Server: REST under {host}/api/v3, GraphQL at {host}/api/graphql."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from forge_app.web.app import create_app
from tests.conftest import drain
from tests.github.fake_github import FakeGitHub, ServerThread
from tests.github.gh_helpers import PR, REPO, open_pull_request, push_pull_request, sha


@pytest.fixture(scope="module")
def ghes() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(prefix="/api/v3")
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    yield fake
    server.stop()


def test_publish_and_resolve_on_enterprise_server(settings, storage, ghes: FakeGitHub, tmp_path: Path) -> None:
    ghes.reset()
    enterprise = dataclasses.replace(settings, github_api_url=ghes.url + "/api/v3", github_web_url=ghes.url)
    app = create_app(enterprise, storage, run_worker=False)
    rules = ["python.lang.security.eval"]
    with TestClient(app) as client:
        token, _ = open_pull_request(client, storage, ghes, tmp_path, {}, {"a.py": "x = eval(y)\n"},
                                     head_sha=sha("ghes1"), rules=rules)
        drain(app)
        [_comment] = ghes.comments_of(REPO, PR)
        push_pull_request(client, token, ghes, tmp_path / "fix", {}, {"a.py": "x = y\n"}, head_sha=sha("ghes2"),
                          rules=rules)
        drain(app)
    assert ghes.requests and all(r["path"].startswith("/api/") for r in ghes.requests)
    assert ghes.count("POST", r"^/api/graphql$") == 2  # find the thread, resolve it
    assert [t["resolved"] for t in ghes.threads.values()] == [True]
    assert ghes.violations == []

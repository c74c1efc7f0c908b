"""Two replicas (apps with storage of their own) on one database, against the fake GitHub: a
manifest-flow state issued by one is accepted by the other, and a rate-limit wait one worker
ran into holds back the other worker's jobs for that installation (no request is sent)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from forge_app.forges.github.credentials import load_credentials
from forge_app.web.app import create_app
from storage import Storage, open_storage
from tests.conftest import drain
from tests.github.fake_github import app_key
from tests.github.gh_helpers import REPO, sha
from tests.github.test_github_setup import unconfigured
from tests.github.test_github_source_fetch import CONTENTS, contents_paths, install
from tests.github.test_registration_single_use import _conversion, _state
from tests.web.source_story import BASE_FILES, post_raw, report, semgrep_results


@pytest.fixture
def other(settings) -> Iterator[Storage]:
    s = open_storage(settings.database)
    yield s
    s.close()


def test_a_manifest_state_from_one_replica_finishes_on_the_other(settings, storage, other, fake_github) -> None:
    bare = unconfigured(settings)
    pem, _ = app_key()
    with TestClient(create_app(bare, storage, run_worker=False)) as first, \
            TestClient(create_app(bare, other, run_worker=False)) as second:
        state = _state(first)
        _conversion(fake_github, "code-replica-1", 404, pem)
        done = second.get("/github/callback", params={"code": "code-replica-1", "state": state})
        assert done.status_code == 200, done.text
        again = first.get("/github/callback", params={"code": "code-replica-1", "state": state})
        assert again.status_code in (400, 409)  # single use across replicas too
    assert load_credentials(bare, storage).app_id == "404"


def test_a_rate_limit_one_worker_met_holds_back_the_other_workers_jobs(settings, storage, other,
                                                                       fake_github) -> None:
    first_app = create_app(settings, storage, run_worker=False)
    second_app = create_app(settings, other, run_worker=False)
    with TestClient(first_app) as first, TestClient(second_app) as second:
        token = install(fake_github, storage)
        reset = int(time.time()) + 600
        fake_github.add_commit(REPO, sha("replica:1"), BASE_FILES)
        fake_github.add_commit(REPO, sha("replica:2"), BASE_FILES)
        fake_github.inject("GET", CONTENTS, 403, headers={"x-ratelimit-remaining": "0",
                                                         "x-ratelimit-reset": str(reset)},
                           message="API rate limit exceeded")
        one = post_raw(first, token, report(semgrep_results(BASE_FILES)), commit=sha("replica:1"))
        drain(first_app)  # the first replica's worker meets the limit
        [job] = storage.jobs(kind="complete_scan")
        assert job["status"] == "queued" and "rate limit" in job["last_error"]

        mark = fake_github.mark()
        two = post_raw(second, token, report(semgrep_results(BASE_FILES)), commit=sha("replica:2"))
        drain(second_app)  # the second replica's worker: its job waits without asking GitHub
        assert contents_paths(fake_github, mark) == []
        waiting = {j["payload"]["scan_id"]: j for j in other.jobs(kind="complete_scan")}
        assert waiting[two["id"]]["status"] == "queued" and "rate limit" in waiting[two["id"]]["last_error"]
        assert reset - 5 <= waiting[two["id"]]["run_at"] <= reset + 5  # until GitHub's reset, not a backoff
        assert one["status"] == two["status"] == "processing"

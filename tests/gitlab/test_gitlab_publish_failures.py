"""Publishing when GitLab misbehaves or the MR is not where the scan expects it:
rate limits wait for Retry-After, outages retry, bad credentials give up with a clear
reason, a crash between posting and recording never posts twice."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from forge_app.forges.gitlab.publish import MR_OBJECT, VERSION_WAIT_SECONDS
from forge_app.security.crypto import encrypt
from storage import Storage
from tests.conftest import SECRET_KEY
from tests.gitlab.fake_gitlab import FakeGitLab, MergeRequest, Project
from tests.gitlab.gitlab_helpers import drain, finding, upload_body

PROJECT, PROJECT_ID, IID, TOKEN = "acme/api", 77, 5, "glpat-failures-0123456789"
PATH = "svc/handlers.py"
BASE = 'import os\n\n\ndef home():\n    return "ok"\n'
HEAD = ('import os\nimport pickle\n\n\ndef home():\n    return "ok"\n\n\ndef load(blob):\n'
        '    return pickle.loads(blob)\n\n\ndef cfg(name):\n    return eval(name)\n')


@dataclass
class Setup:
    gitlab: FakeGitLab
    project: Project
    mr: MergeRequest
    base_sha: str
    head_sha: str
    upload_token: str
    connection_id: int


def _findings(files: dict[str, str]) -> list:
    text = files[PATH]
    out = []
    if "pickle.loads" in text:
        out.append(finding(files, "python.pickle", PATH, "pickle.loads", message="unsafe deserialisation",
                           fix=["    return json.loads(blob)"]))
    if "eval(" in text:
        out.append(finding(files, "python.eval", PATH, "eval(name)", message="eval of input"))
    return out


@pytest.fixture
def setup(gitlab: FakeGitLab, storage: Storage) -> Setup:
    gitlab.add_token(TOKEN, ["api"])
    project = gitlab.add_project(PROJECT, PROJECT_ID)
    base_sha = gitlab.commit(project, {PATH: BASE}, "base")
    head_sha = gitlab.commit(project, {PATH: HEAD}, "head")
    mr = gitlab.open_mr(project, IID, base_sha, head_sha)
    c = storage.create_connection(forge="gitlab", base_url=gitlab.url, scope="project", target=PROJECT,
                                  token_enc=encrypt(SECRET_KEY, TOKEN),
                                  webhook_secret_enc=encrypt(SECRET_KEY, "whsec1234"),
                                  info={"project_id": PROJECT_ID, "default_branch": "main"})
    return Setup(gitlab, project, mr, base_sha, head_sha, storage.create_upload_token("gitlab", PROJECT), c.id)


def upload(client: Any, s: Setup, files: dict[str, str], sha: str, pr: int | None = IID) -> dict[str, Any]:
    body = upload_body(files, _findings(files), commit=sha, branch="main" if pr is None else "feature", pull_request=pr)
    r = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {s.upload_token}"})
    assert r.status_code == 201, r.text
    return r.json()


def publish_jobs(storage: Storage) -> list[dict[str, Any]]:
    return storage.jobs(kind="publish_scan")


def run_later(app: Any, seconds: float) -> bool:
    """Run one job as if `seconds` had passed."""
    return asyncio.run(app.state.worker.run_once(now=time.time() + seconds))


def diff_threads(mr: MergeRequest) -> list[dict[str, Any]]:
    return [d for d in mr.discussions if not d["individual_note"]]


def test_rate_limit_waits_for_retry_after_and_a_retry_never_posts_twice(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: BASE}, setup.base_sha, pr=None)
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    # The first thread is created, the second answer is a 429: as if the job crashed between posting and recording.
    setup.gitlab.inject("POST", r"/discussions$", 429, headers={"Retry-After": "120"}, after=1)
    before = time.time()
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "queued" and "rate limit" in job["last_error"]
    assert before + 115 <= job["run_at"] <= time.time() + 125
    assert len(diff_threads(setup.mr)) == 1
    assert run_later(app, 130)
    assert publish_jobs(storage)[0]["status"] == "done"
    threads = diff_threads(setup.mr)
    assert sorted(t["notes"][0]["body"].split("`")[1] for t in threads) == ["python.eval", "python.pickle"]
    assert len(storage.review_comments(storage.find_repository("gitlab", PROJECT).id, IID)) == 2
    assert setup.gitlab.statuses[(PROJECT_ID, setup.head_sha)][-1]["status"] == "success"


def test_server_errors_are_retried(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    setup.gitlab.inject("GET", r"/versions$", 502, body="<html>Bad Gateway</html>")
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "queued" and "GitLab is failing (502)" in job["last_error"]
    assert run_later(app, 3600) and publish_jobs(storage)[0]["status"] == "done"
    assert len(diff_threads(setup.mr)) == 2


def test_revoked_token_gives_up_with_a_clear_reason(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    del setup.gitlab.tokens[TOKEN]
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "failed"
    assert "rejected the connection's token" in job["last_error"] and "401" in job["last_error"]
    assert TOKEN not in job["last_error"]


def test_forbidden_gives_up(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    setup.gitlab.inject("POST", r"/statuses/", 403, body={"message": "403 Forbidden"})
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "failed" and "Developer role" in job["last_error"]


def test_read_only_token_gives_up(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    setup.gitlab.tokens[TOKEN].scopes = ["read_api"]
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "failed" and "lacks the `api` scope" in job["last_error"]


def test_a_job_retried_after_a_server_error_sets_the_status_once(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    setup.gitlab.inject("GET", r"/diffs$", 500)
    drain(app)
    assert run_later(app, 3600)
    assert publish_jobs(storage)[0]["status"] == "done"
    [status] = setup.gitlab.statuses[(PROJECT_ID, setup.head_sha)]
    # No "running" status first: within the request budget that request buys an inline comment.
    assert status["history"] == ["success"]
    assert [r for r in setup.gitlab.requests if "statuses" in r.path and r.status >= 400] == []


def test_an_invalid_position_falls_back_to_a_plain_thread(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    setup.gitlab.inject("POST", r"/discussions$", 400,
                        body={"message": "400 Bad request - Note {:line_code=>[\"must be a valid line code\"]}"})
    drain(app)
    assert publish_jobs(storage)[0]["status"] == "done"
    threads = diff_threads(setup.mr)
    assert len(threads) == 2
    unanchored = [t for t in threads if "position" not in t["notes"][0]]
    assert len(unanchored) == 1 and unanchored[0]["notes"][0]["body"].startswith(f"**`{PATH}`, line ")


def test_a_scan_of_an_older_version_sets_only_its_status(client, storage, app, setup: Setup) -> None:
    newer = setup.gitlab.commit(setup.project, {PATH: HEAD + "\n# more\n"}, "newer")
    setup.gitlab.push(setup.mr, setup.base_sha, newer)
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    drain(app)
    assert publish_jobs(storage)[0]["status"] == "done"
    assert setup.mr.discussions == []
    assert setup.gitlab.statuses[(PROJECT_ID, setup.head_sha)][0]["history"] == ["success"]


def test_a_scan_before_gitlab_recorded_the_version_waits(client, storage, app, setup: Setup) -> None:
    pushed = setup.gitlab.commit(setup.project, {PATH: HEAD + "\n# pushed\n"}, "pushed")
    upload(client, setup, {PATH: HEAD + "\n# pushed\n"}, pushed)
    drain(app)
    [job] = publish_jobs(storage)
    assert job["status"] == "queued" and "has not recorded" in job["last_error"]
    assert job["run_at"] >= time.time() + VERSION_WAIT_SECONDS - 5
    setup.gitlab.push(setup.mr, setup.base_sha, pushed)
    assert run_later(app, VERSION_WAIT_SECONDS + 1)
    assert publish_jobs(storage)[0]["status"] == "done" and len(diff_threads(setup.mr)) == 2


def test_a_merged_merge_request_gets_only_the_status(client, storage, app, setup: Setup) -> None:
    repo = storage.ensure_repository("gitlab", PROJECT)
    storage.remember_forge_object(repo.id, f"pr:{IID}", MR_OBJECT, {"state": "merged"})
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    drain(app)
    assert setup.mr.discussions == []
    assert setup.gitlab.statuses[(PROJECT_ID, setup.head_sha)][0]["history"] == ["success"]


def test_no_connection_means_nothing_to_publish(client, storage, app, setup: Setup) -> None:
    storage.delete_connection(setup.connection_id)
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    drain(app)
    assert publish_jobs(storage)[0]["status"] == "done"
    assert setup.gitlab.requests == []


def test_a_deleted_summary_note_is_posted_again(client, storage, app, setup: Setup) -> None:
    files = {PATH: HEAD}
    repo = storage.ensure_repository("gitlab", PROJECT)
    storage.remember_forge_object(repo.id, f"pr:{IID}", "summary", {"id": "deadbeef:999", "body": "old"})
    # A finding on an unchanged line (outside the diff) needs the summary note.
    body = upload_body(files, _findings(files) + [finding(files, "python.os", PATH, "import os")],
                       commit=setup.head_sha, branch="feature", pull_request=IID)
    assert client.post("/api/v1/scans", json=body,
                       headers={"Authorization": f"Bearer {setup.upload_token}"}).status_code == 201
    drain(app)
    summaries = [d for d in setup.mr.discussions if d["individual_note"]]
    assert len(summaries) == 1 and "python.os" in summaries[0]["notes"][0]["body"]
    stored = storage.forge_object(repo.id, f"pr:{IID}", "summary")
    # Posting costs one request: the note's discussion is looked up when it is first edited.
    assert stored["id"] == f":{summaries[0]['notes'][0]['id']}"


FIXED = HEAD.replace("    return eval(name)\n", "    return name\n")


def _eval_thread(mr: MergeRequest) -> dict[str, Any]:
    [thread] = [t for t in diff_threads(mr) if "`python.eval`" in t["notes"][0]["body"]]
    return thread


def _push(client: Any, app: Any, s: Setup, files: dict[str, str], message: str) -> str:
    sha = s.gitlab.commit(s.project, files, message)
    s.gitlab.push(s.mr, s.base_sha, sha)
    upload(client, s, files, sha)
    drain(app)
    return sha


def test_a_reverted_fix_reopens_its_thread_and_a_new_fix_resolves_it_again(client, storage, app,
                                                                           setup: Setup) -> None:
    upload(client, setup, {PATH: BASE}, setup.base_sha, pr=None)
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    drain(app)
    thread = _eval_thread(setup.mr)
    repo_id = storage.find_repository("gitlab", PROJECT).id

    def row() -> Any:
        return next(rc for rc in storage.review_comments(repo_id, IID)
                    if rc.comment_id == str(thread["notes"][0]["id"]))

    fixed = _push(client, app, setup, {PATH: FIXED}, "fix")
    assert FakeGitLab.resolved(thread) and row().resolved
    assert [n["body"].split(".")[0] for n in thread["notes"][1:]] == [f"✅ Fixed in {fixed[:12]}"]

    reverted = _push(client, app, setup, {PATH: HEAD}, "revert the fix")
    assert not FakeGitLab.resolved(thread) and not row().resolved
    assert len(thread["notes"]) == 3
    assert thread["notes"][2]["body"].startswith(f"⚠️ Reintroduced in {reverted[:12]}")
    assert len(diff_threads(setup.mr)) == 2  # a reply on the thread, never a second one

    again = _push(client, app, setup, {PATH: FIXED}, "fix again")
    assert FakeGitLab.resolved(thread) and row().resolved
    assert len(thread["notes"]) == 4 and thread["notes"][3]["body"].startswith(f"✅ Fixed in {again[:12]}")
    assert [j["status"] for j in publish_jobs(storage)] == ["done"] * 4


def test_a_retried_resolve_replies_once(client, storage, app, setup: Setup) -> None:
    upload(client, setup, {PATH: BASE}, setup.base_sha, pr=None)
    upload(client, setup, {PATH: HEAD}, setup.head_sha)
    drain(app)
    thread = _eval_thread(setup.mr)
    # The reply is posted, then resolving it fails: the retried job must not reply again.
    setup.gitlab.inject("PUT", r"/discussions/[0-9a-f]+$", 502, body="<html>Bad Gateway</html>")
    fixed_sha = setup.gitlab.commit(setup.project, {PATH: FIXED}, "fix")
    setup.gitlab.push(setup.mr, setup.base_sha, fixed_sha)
    upload(client, setup, {PATH: FIXED}, fixed_sha)
    drain(app)
    assert len(thread["notes"]) == 2 and not FakeGitLab.resolved(thread)
    assert sorted(j["status"] for j in publish_jobs(storage)) == ["done", "queued"]
    assert run_later(app, 3600) and [j["status"] for j in publish_jobs(storage)] == ["done", "done"]
    assert [n["body"].startswith(f"✅ Fixed in {fixed_sha[:12]}") for n in thread["notes"]] == [False, True]
    assert FakeGitLab.resolved(thread)
    repo_id = storage.find_repository("gitlab", PROJECT).id
    resolved = {rc.comment_id: rc.resolved for rc in storage.review_comments(repo_id, IID)}
    assert resolved[str(thread["notes"][0]["id"])] is True

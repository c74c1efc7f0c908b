"""Recorded GitLab conversations, replayed offline (vcrpy, record_mode "none").

The cassettes in tests/gitlab/cassettes/ were recorded against the fake GitLab
(tests/gitlab/fake_gitlab.py) with the host rewritten to http://gitlab.test and the
token scrubbed. Re-record with:

    FORGE_APP_RECORD_GITLAB_CASSETTES=1 .venv/bin/python -m pytest tests/gitlab/test_gitlab_cassettes.py

Replaying checks the adapter sends exactly the recorded requests (method, URL, query,
body) in order; a separate test validates every recorded request against the contract.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
import yaml

from forge_app.core.models import Finding, Fingerprint, Fix
from forge_app.core.review.plan import PlannedComment, ReviewItem
from forge_app.core.review.render import Counts, finding_comment, summary_comment
from forge_app.forges.base import PullRequestRef, StatusReport
from forge_app.forges.connections import ConnectionRequest
from forge_app.forges.gitlab import RENDERING as GITLAB_STYLE
from forge_app.forges.gitlab.client import GitLabClient
from forge_app.forges.gitlab.connection import check_connection
from forge_app.forges.gitlab.http import GitLabApi
from storage import ReviewComment
from tests.gitlab.fake_gitlab import OUTSIDE_CONTRACT, FakeGitLab
from tests.support.openapi_check import api_description

CASSETTES = Path(__file__).parent / "cassettes"
RECORDED_HOST = "http://gitlab.test"
RECORD = os.environ.get("FORGE_APP_RECORD_GITLAB_CASSETTES") == "1"
TOKEN = "glpat-cassette-secret-0123456789"
PROJECT, PROJECT_ID, IID = "acme/shop", 321, 3
PATH = "app/views.py"
BASE = "import os\n\n\ndef index(request):\n    return render(request)\n"
HEAD = ("import os\nimport yaml\n\n\ndef index(request):\n    data = yaml.load(request.body)\n"
        "    return render(request, data,\n                  debug=True)\n")


def _recorder(mode: str, live_url: str | None = None) -> vcr.VCR:
    def request(req: Any) -> Any:
        if live_url:
            req.uri = req.uri.replace(live_url, RECORDED_HOST)
        return req

    def response(resp: dict[str, Any]) -> dict[str, Any]:
        headers = resp["headers"]
        headers.pop("date", None)
        headers.pop("server", None)
        if live_url and "link" in headers:
            headers["link"] = [v.replace(live_url, RECORDED_HOST) for v in headers["link"]]
        return resp

    return vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode=mode, serializer="yaml",
                   match_on=["method", "scheme", "host", "port", "path", "query", "body"],
                   filter_headers=[("PRIVATE-TOKEN", "REDACTED"), ("Authorization", "REDACTED")],
                   before_record_request=request, before_record_response=response, decode_compressed_response=True)


def _seed(fake: FakeGitLab) -> tuple[str, str]:
    fake.add_token(TOKEN, ["api"])
    project = fake.add_project(PROJECT, PROJECT_ID)
    fake.add_group("acme", 55)
    base = fake.commit(project, {PATH: BASE}, "base")
    first = fake.commit(project, {PATH: HEAD.replace("debug=True", "debug=False")}, "first")
    head = fake.commit(project, {PATH: HEAD}, "head")
    mr = fake.open_mr(project, IID, base, first)
    fake.push(mr, base, head)
    return base, head


def _comment(identity: int, finding: Finding, line: int, start: int | None, suggestion: bool) -> PlannedComment:
    body = finding_comment(finding, "block" if suggestion else "comment", GITLAB_STYLE, as_suggestion=suggestion,
                           scan_url="https://forge-app.example.com/api/v1/scans/9")
    return PlannedComment(ReviewItem(identity, finding, "comment"), PATH, line, start, body, suggestion)


async def _review(base_url: str, head: str) -> dict[str, Any]:
    """One scan's worth of calls, in the order the generic publish flow makes them."""
    client = GitLabClient(GitLabApi(base_url, TOKEN), PROJECT)
    pr = PullRequestRef(PROJECT, IID, head, source_branch="feature")
    counts = Counts(2, 0, 0, blocking=1)
    url = "https://forge-app.example.com/api/v1/scans/9"
    await client.set_status(pr, StatusReport("in_progress", "Publishing scan results", "", counts, url))
    files = await client.changed_files(pr)
    # Fixed fingerprints: the cassette must not change when the fingerprint algorithm does.
    yaml_load = Finding("python.yaml-load", PATH, 6, 6, "yaml.load runs code", "error",
                        fix=Fix(6, 6, ("    data = yaml.safe_load(request.body)",)),
                        fingerprint=Fingerprint("8c3db75233e0365583ac10719f8583f3", "0123456789abcdef"))
    debug = Finding("python.debug-true", PATH, 7, 8, "debug in production",
                    fingerprint=Fingerprint("c599567226d1523cd4126ff0a09420ea", "fedcba9876543210"))
    posted = await client.post_comments(pr, [_comment(1, yaml_load, 6, None, True), _comment(2, debug, 8, 7, False)])
    summary = summary_comment([(Finding("python.os", PATH, 1, 1, "os imported"), "comment")], counts, url, GITLAB_STYLE)
    posted_id = await client.upsert_summary(pr, summary, None)  # `:<note id>`: one request
    summary_id = await client.upsert_summary(pr, summary.replace("**2** new", "**1** new"), posted_id)
    assert summary_id.endswith(posted_id)  # its discussion looked up on the first edit
    markers = await client.existing_markers(pr)
    fixed = ReviewComment(1, 1, "fp", posted[0].comment_id, posted[0].thread_id, 9, PATH, 6, False)
    await client.resolve(pr, fixed, "✅ Fixed in 0123456789ab.")
    await client.set_status(pr, StatusReport("failure", "1 blocking", "", counts, url))
    return {"files": {p: sorted(n for h in f.hunks for n in h.added) for p, f in files.items()},
            "posted": [(p.identity_id, p.comment_id, p.thread_id) for p in posted], "summary": summary_id,
            "markers": sorted(markers), "requests": client.api.requests_sent}


def _check(base_url: str) -> list[dict[str, Any]]:
    api = GitLabApi(base_url, TOKEN)
    return [check_connection(api, ConnectionRequest("gitlab", base_url, "project", PROJECT, TOKEN, "s" * 8)),
            check_connection(api, ConnectionRequest("gitlab", base_url, "group", "acme", TOKEN, "s" * 8))]


EXPECTED_REVIEW = {
    "files": {PATH: [2, 6, 7, 8]},
    "posted": [(1, "5001", "3fb39737f829d26f16404e86ffd4c5f6dfafa3be"),
               (2, "5002", "1fefd12f48d44885706f40a77e085fe5aa84a4b5")],
    "summary": "47f4cd09f7f824bb492c693ee1af54ac3cbfd3e1:5003",
    "markers": ["8c3db75233e0365583ac10719f8583f3", "c599567226d1523cd4126ff0a09420ea"],
    # versions, diffs, 2 discussions, summary (post; on its first edit: list, edit), list markers,
    # list threads (a retry must not reply twice), reply, resolve, status ("running" is not sent)
    "requests": 13,
}


@pytest.mark.skipif(not RECORD, reason="set FORGE_APP_RECORD_GITLAB_CASSETTES=1 to re-record")
def test_record_cassettes(gitlab: FakeGitLab) -> None:
    _, head = _seed(gitlab)
    for name in ("gitlab_review.yaml", "gitlab_connection_check.yaml"):
        (CASSETTES / name).unlink(missing_ok=True)
    with _recorder("all", gitlab.url).use_cassette("gitlab_review.yaml"):
        asyncio.run(_review(gitlab.url, head))
    with _recorder("all", gitlab.url).use_cassette("gitlab_connection_check.yaml"):
        _check(gitlab.url)


def _head_sha() -> str:
    return _seed(FakeGitLab())[1]  # the fake's SHAs are deterministic


def test_review_replays_offline() -> None:
    with _recorder("none").use_cassette("gitlab_review.yaml", allow_playback_repeats=False) as cassette:
        result = asyncio.run(_review(RECORDED_HOST, _head_sha()))
        assert cassette.all_played
    assert result["files"] == EXPECTED_REVIEW["files"]
    assert result["posted"] == EXPECTED_REVIEW["posted"]
    assert result["summary"] == EXPECTED_REVIEW["summary"]
    assert result["markers"] == EXPECTED_REVIEW["markers"]  # both threads carry their finding's marker
    assert result["requests"] == EXPECTED_REVIEW["requests"]


def test_connection_check_replays_offline() -> None:
    with _recorder("none").use_cassette("gitlab_connection_check.yaml") as cassette:
        project, group = _check(RECORDED_HOST)
        assert cassette.all_played
    assert project["checked"] == "token scopes and project" and project["scopes"] == ["api"]
    assert project["project_id"] == 321 and project["api_url"] == f"{RECORDED_HOST}/api/v4"
    assert group["group_id"] == 55 and group["full_path"] == "acme"


def _interactions(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((CASSETTES / name).read_text())["interactions"]


@pytest.mark.parametrize("name", ["gitlab_review.yaml", "gitlab_connection_check.yaml"])
def test_recorded_requests_match_the_contract_and_hold_no_secret(name: str) -> None:
    text = (CASSETTES / name).read_text()
    assert TOKEN not in text and "glpat-" not in text
    contract = api_description("gitlab")
    outside = []
    for interaction in _interactions(name):
        req = interaction["request"]
        url = urlsplit(req["uri"])
        assert f"{url.scheme}://{url.netloc}" == RECORDED_HOST
        path = url.path.removeprefix("/api/v4")
        headers = {k: v[0] for k, v in req["headers"].items()}
        assert headers["PRIVATE-TOKEN"] == "REDACTED"
        if any(m == req["method"] and re.fullmatch(p, path) for m, p in OUTSIDE_CONTRACT):
            outside.append(f"{req['method']} {path}")
            continue
        body = req["body"].encode() if isinstance(req["body"], str) else req["body"]
        contract.check(req["method"], path, query=url.query, headers=headers, body=body or None)
    assert outside == []  # reviewing an MR and checking a connection stay entirely within the contract
    if name == "gitlab_connection_check.yaml":  # reads only: a check never writes
        assert [(i["request"]["method"], urlsplit(i["request"]["uri"]).path) for i in _interactions(name)] == [
            ("GET", "/api/v4/personal_access_tokens/self"), ("GET", "/api/v4/projects/acme%2Fshop"),
            ("GET", "/api/v4/personal_access_tokens/self"), ("GET", "/api/v4/groups/acme")]

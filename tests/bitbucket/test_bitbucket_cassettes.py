"""The Bitbucket conversation of one PR scan, replayed offline from a vcrpy cassette.

The cassette was recorded against the fake Bitbucket (tests/bitbucket/fake_bitbucket.py)
with the Authorization header scrubbed and the fake's address rewritten to
https://api.bitbucket.org/2.0. Re-record with:

    FORGE_APP_RECORD_CASSETTES=1 .venv/bin/python -m pytest tests/bitbucket/test_bitbucket_cassettes.py

Replay uses record_mode "none": any request not in the cassette fails the test, and
every recorded request is validated against Bitbucket's API description: the whole
conversation (repository connection, a short hash known from a scan, publishing) stays
within it, apart from following Bitbucket's own redirect of the pull request diff.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import vcr
import yaml

from forge_app.config import Settings
from forge_app.core.review.plan import ReviewItem, plan_review
from forge_app.core.review.render import Counts
from forge_app.forges.base import PullRequestRef, StatusReport
from forge_app.forges.bitbucket import RENDERING as BITBUCKET_STYLE
from forge_app.forges.bitbucket.client import BitbucketClient
from forge_app.forges.bitbucket.commits import full_sha
from forge_app.forges.bitbucket.connection import verify
from forge_app.forges.bitbucket.http import BitbucketApi
from forge_app.forges.connections import ConnectionRequest
from storage import NewScan, ReviewComment, Storage
from tests.bitbucket.bitbucket_api_check import check_request, described_route
from tests.bitbucket.bitbucket_scenario import EVAL, HEAD_FILES, PR, REPO, SOURCE_BRANCH, build_world, scan
from tests.bitbucket.fake_bitbucket import FakeBitbucket

CASSETTE = Path(__file__).resolve().parent / "cassettes" / "bitbucket_pull_request_scan.yaml"
API = "https://api.bitbucket.org/2.0"
TOKEN = "cassette-access-token-0123456789"
SCAN_URL = "https://forge-app.example.com/api/v1/scans/42"


async def conversation(base_url: str, storage: Storage, head: str) -> dict[str, Any]:
    """Everything a first PR scan says to Bitbucket, then a fix resolving one thread."""
    info = await verify(ConnectionRequest("bitbucket", base_url, "repository", REPO, TOKEN, "webhook-secret"),
                        Settings())
    repo = storage.ensure_repository("bitbucket", REPO)
    # CI uploaded the scan of the head: the webhook's 12-character hash resolves without a request.
    storage.record_scan(NewScan(repo.id, head, SOURCE_BRANCH, "main", PR, False, None, ["semgrep"], [], {}, [],
                                False))
    async with BitbucketApi(base_url, TOKEN) as api:
        sha = await full_sha(storage, api, repo.id, REPO, head[:12], pull_request=PR)
        client = BitbucketClient(api, storage, repo.id, REPO)
        pr = PullRequestRef(REPO, PR, sha, SOURCE_BRANCH)
        items = [ReviewItem(i + 1, f, "block" if f.rule_id == EVAL else "comment")
                 for i, f in enumerate(scan(HEAD_FILES))]
        counts = Counts(len(items), 0, 0, blocking=1)
        await client.set_status(pr, StatusReport("in_progress", "Publishing scan results", "", counts, SCAN_URL))
        diff = await client.changed_files(pr)
        plan = plan_review(items, present_identities=[i.identity_id for i in items], posted={}, diff=diff,
                           style=BITBUCKET_STYLE, counts=counts, scan_url=SCAN_URL)
        posted = await client.post_comments(pr, plan.comments)
        summary_id = await client.upsert_summary(pr, "<!-- forge-app:summary -->\nfirst", None)
        await client.upsert_summary(pr, "<!-- forge-app:summary -->\nedited", summary_id)
        markers = await client.existing_markers(pr)
        await client.set_status(pr, StatusReport("failure", "1 blocking finding(s) introduced", "", counts, SCAN_URL,
                                                 tuple(items)))
        first = posted[0]
        await client.resolve(pr, ReviewComment(1, first.identity_id, "fp", first.comment_id, None, 1, "p", 1, False),
                             "fixed")
    return {"scopes": info["scopes"], "sha": sha, "files": sorted(diff), "posted": len(posted),
            "markers": len(markers), "outside": len(plan.outside)}


def _scrub_request(fake_base: str):
    def scrub(request: Any) -> Any:
        request.uri = request.uri.replace(fake_base, API)
        for name in list(request.headers):
            if name.lower() == "host":
                request.headers[name] = urlsplit(API).netloc
        return request
    return scrub


def _scrub_response(fake_base: str):
    def scrub(response: dict[str, Any]) -> dict[str, Any]:
        body = response["body"].get("string")
        if isinstance(body, bytes):
            response["body"]["string"] = body.replace(fake_base.encode(), API.encode())
        for name in list(response["headers"]):
            if name.lower() == "location":
                response["headers"][name] = [v.replace(fake_base, API) for v in response["headers"][name]]
        return response
    return scrub


@contextlib.contextmanager
def recording_fake() -> Iterator[FakeBitbucket]:
    fake = FakeBitbucket()
    build_world(fake)
    fake.grant(TOKEN, "repository", REPO)
    with fake.running():
        yield fake
    assert fake.problems == []


def record(storage: Storage, head: str) -> None:
    CASSETTE.unlink(missing_ok=True)
    with recording_fake() as fake:
        recorder = vcr.VCR(record_mode="all", filter_headers=["authorization"], decode_compressed_response=True,
                           before_record_request=_scrub_request(fake.base_url),
                           before_record_response=_scrub_response(fake.base_url))
        with recorder.use_cassette(str(CASSETTE)):
            asyncio.run(conversation(fake.base_url, storage, head))


def test_the_recorded_conversation_replays_offline(tmp_path: Path) -> None:
    head = build_world(FakeBitbucket()).head  # commit ids are derived from the files: the same as recorded
    if os.environ.get("FORGE_APP_RECORD_CASSETTES") == "1":
        from storage import open_storage

        record(open_storage(str(tmp_path / "record.db")), head)
    from storage import open_storage

    storage = open_storage(str(tmp_path / "replay.db"))
    player = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query"])
    with player.use_cassette(str(CASSETTE)) as cassette:
        result = asyncio.run(conversation(API, storage, head))
        assert cassette.all_played
    assert result == {"scopes": ["pullrequest", "pullrequest:write", "repository", "repository:write"],
                      "sha": head, "files": ["app/views.py"], "posted": 2, "markers": 2, "outside": 3}


def test_every_recorded_request_matches_the_api_description() -> None:
    text = CASSETTE.read_text()
    assert "authorization" not in text.lower() and TOKEN not in text and "127.0.0.1" not in text
    interactions = yaml.safe_load(text)["interactions"]
    methods = set()
    redirected_to: set[str] = set()
    for interaction in interactions:
        request = interaction["request"]
        url = urlsplit(request["uri"])
        followed = request["uri"] in redirected_to
        assert f"{url.scheme}://{url.netloc}" == "https://api.bitbucket.org"
        body = request.get("body")
        if isinstance(body, str):
            body = body.encode()
        headers = {k: v[0] if isinstance(v, list) else v for k, v in request["headers"].items()}
        check_request(request["method"], url.path.removeprefix("/2.0"), query=url.query,
                      headers={k: v for k, v in headers.items() if k.lower() == "content-type"}, body=body or None,
                      redirected=followed)
        assert followed or described_route(request["method"], url.path.removeprefix("/2.0")), request["uri"]
        location = {k.lower(): v for k, v in interaction["response"]["headers"].items()}.get("location")
        if location:
            redirected_to.add(location[0] if isinstance(location, list) else location)
        methods.add((request["method"], url.path.split("/")[-1]))
    assert {("GET", "diff"), ("POST", "comments"), ("PUT", "forge-app"), ("POST", "annotations"),
            ("POST", "build"), ("POST", "resolve")} <= methods

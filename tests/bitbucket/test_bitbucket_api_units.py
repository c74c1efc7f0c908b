"""The HTTP session and the Code Insights payloads, without a server."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from forge_app.core.models import Finding
from forge_app.core.review.plan import ReviewItem
from forge_app.core.review.render import Counts
from forge_app.forges.base import StatusReport
from forge_app.forges.bitbucket import insights
from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, job_error, retry_after_seconds
from forge_app.jobs.errors import GiveUp, RetryLater

BASE = "https://api.bitbucket.org/2.0"
TOKEN = "secret-access-token-0123456789"


def _run(coro):
    return asyncio.run(coro)


def _api(handler) -> BitbucketApi:
    return BitbucketApi(BASE, TOKEN, transport=httpx.MockTransport(handler))


def test_the_diff_redirect_is_followed_with_the_token_on_the_same_origin() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/pullrequests/3/diff"):
            target = f"{BASE}/repositories/a/b/diff/a/b:1234%0D5678?from_pullrequest_id=3&topic=true"
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, text="diff --git a/x b/x\n")

    async def go() -> str:
        async with _api(handler) as api:
            return await api.get_text("/repositories/a/b/pullrequests/3/diff")

    assert _run(go()).startswith("diff --git")
    assert [r.headers.get("authorization") for r in seen] == [f"Bearer {TOKEN}", f"Bearer {TOKEN}"]
    assert seen[1].url.params["from_pullrequest_id"] == "3"


def test_a_redirect_to_another_origin_never_gets_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.bitbucket.org":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/diff/1?sig=abc"})
        return httpx.Response(200, text="")

    async def go() -> None:
        async with _api(handler) as api:
            await api.get_text("/repositories/a/b/pullrequests/3/diff")

    _run(go())
    assert "authorization" in seen[0].headers and "authorization" not in seen[1].headers
    # Another port on the same host is another origin, too.
    api = BitbucketApi("http://127.0.0.1:8000/2.0", TOKEN)
    assert api._headers("http://127.0.0.1:9000/2.0/x") == {} and api._headers("http://127.0.0.1:8000/2.0/x")
    assert TOKEN not in repr(api)


def test_pagination_follows_next_links() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        doc = {"values": [{"id": page}], "pagelen": 1}
        if page < 3:
            doc["next"] = f"{BASE}/repositories/a/b/pullrequests/1/comments?page={page + 1}&pagelen=1"
        return httpx.Response(200, json=doc)

    async def go() -> list[int]:
        async with _api(handler) as api:
            return [c["id"] async for c in api.paginate("/repositories/a/b/pullrequests/1/comments")]

    assert _run(go()) == [1, 2, 3]


def test_errors_become_job_outcomes_without_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        status = int(request.url.path.rsplit("/", 1)[-1])
        headers = {"Retry-After": "12"} if status == 429 else {}
        return httpx.Response(status, headers=headers, json={"type": "error", "error": {"message": "nope"}})

    async def fail(status: int) -> BitbucketError:
        async with _api(handler) as api:
            with pytest.raises(BitbucketError) as info:
                await api.request("POST", f"/x/{status}", json={})
            return info.value

    limited = job_error(_run(fail(429)), "a/b #1")
    assert isinstance(limited, RetryLater) and limited.delay == 12
    assert isinstance(job_error(_run(fail(502)), "a/b #1"), RetryLater)
    for status in (401, 403, 404, 400):
        outcome = job_error(_run(fail(status)), "a/b #1")
        assert isinstance(outcome, GiveUp) and TOKEN not in str(outcome) and "a/b #1" in str(outcome)


def test_retry_after_accepts_seconds_and_dates() -> None:
    assert retry_after_seconds("30") == 30
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 <= (retry_after_seconds(later) or 0) <= 91
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def _item(n: int, severity: str = "warning", mode: str = "comment", message: str = "m") -> ReviewItem:
    f = Finding(rule_id=f"rule.{n % 7}", path=f"src/f{n}.py", start_line=n + 1, end_line=n + 1, message=message,
                severity=severity)  # type: ignore[arg-type]
    return ReviewItem(n, f, mode)


def test_annotations_most_severe_first_capped_at_1000_and_clipped() -> None:
    items = [_item(i, ("info", "warning", "error")[i % 3], "block" if i % 50 == 0 else "comment", "x" * 600)
             for i in range(1200)]
    items.append(_item(5000, mode="monitor"))
    docs = insights.annotation_docs(items, "https://forge.example/api/v1/scans/1")
    assert len(docs) == 1000
    assert all(len(d["summary"]) <= 450 and d["summary"] for d in docs)
    assert all(len(d["details"]) <= 2000 for d in docs)
    ranks = [insights.SEVERITIES.index(d["severity"]) for d in docs]
    assert ranks == sorted(ranks) and docs[0]["severity"] == "CRITICAL" and docs[0]["result"] == "FAILED"
    assert all(d["external_id"] for d in docs) and len({d["external_id"] for d in docs}) == 1000
    assert [len(b) for b in insights.batches(docs)] == [100] * 10
    report = insights.report(StatusReport("failure", "t", "", Counts(1201, 0, 0, blocking=24),
                                          "https://forge.example/api/v1/scans/1", tuple(items)), len(docs))
    assert report["result"] == "FAILED" and "1000" in report["details"] and len(report["data"]) <= 10


def test_links_must_be_valid_urls() -> None:
    assert insights.valid_url("http://testserver/api/v1/scans/1")
    assert insights.valid_url("not a url") is None and insights.valid_url("/relative") is None

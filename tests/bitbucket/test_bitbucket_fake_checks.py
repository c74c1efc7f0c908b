"""The fake Bitbucket is only as good as its checks: it refuses what Bitbucket's description refuses,
and every route the description lacks, except an explicit, commented allow-list."""

from __future__ import annotations

import httpx

from tests.bitbucket.bitbucket_api_check import ALLOWED_OUTSIDE, request_problems
from tests.bitbucket.bitbucket_scenario import PR, REPO, build_world
from tests.bitbucket.fake_bitbucket import FakeBitbucket


def test_requests_outside_the_description_are_refused_and_recorded(fake: FakeBitbucket) -> None:
    world = build_world(fake)
    fake.grant("t-0123456789", "workspace", "acme")
    auth = {"Authorization": "Bearer t-0123456789"}
    repo = f"{fake.base_url}/repositories/{REPO}"
    comments = f"{repo}/pullrequests/{PR}/comments"
    bad = httpx.post(comments, json={"content": {"raw": "no type"}}, headers=auth)  # `type` is required
    unknown = httpx.get(f"{repo}/refs/branches", headers=auth)
    pr_list = httpx.get(f"{repo}/pullrequests", params={"pagelen": 1}, headers=auth)  # a real route, not described
    diff = httpx.get(f"{repo}/diff/{world.head[:12]}..{world.base[:12]}", headers=auth)  # never redirected there
    assert bad.status_code == 400
    assert unknown.status_code == pr_list.status_code == diff.status_code == 404
    assert len(fake.problems) == 4 and fake.outside_description == []
    fake.problems.clear()
    good = httpx.post(comments, json={"type": "pullrequest_comment", "content": {"raw": "ok"}}, headers=auth)
    assert good.status_code == 201


def test_only_the_allow_list_passes_outside_the_description(fake: FakeBitbucket) -> None:
    world = build_world(fake)
    fake.grant("t-0123456789", "workspace", "acme")
    auth = {"Authorization": "Bearer t-0123456789"}
    assert len(ALLOWED_OUTSIDE) == 2  # the workspace check and the last-resort commit lookup, nothing else
    workspace = httpx.get(f"{fake.base_url}/repositories/acme", headers=auth)
    commit = httpx.get(f"{fake.base_url}/repositories/{REPO}/commit/{world.head[:12]}", headers=auth)
    assert workspace.status_code == commit.status_code == 200
    assert fake.outside_description == ["GET /repositories/acme", f"GET /repositories/{REPO}/commit/{world.head[:12]}"]
    # Bitbucket's own redirect of the (described) pull request diff may be followed, and only that target.
    redirect = httpx.get(f"{fake.base_url}/repositories/{REPO}/pullrequests/{PR}/diff", headers=auth)
    assert redirect.status_code == 302
    assert httpx.get(redirect.headers["location"], headers=auth).status_code == 200
    assert fake.followed_redirects == [f"GET /repositories/{REPO}/diff/{world.head[:12]}..{world.base[:12]}"]
    assert fake.problems == []


def test_the_report_data_erratum_is_the_only_leniency() -> None:
    report = (b'{"type": "report", "title": "t", "report_type": "SECURITY", '
              b'"data": [{"title": "New", "type": "NUMBER", "value": 3}]}')
    path = f"/repositories/{REPO}/commit/{'a' * 40}/reports/forge-app"
    headers = {"Content-Type": "application/json"}
    assert request_problems("PUT", path, headers=headers, body=report) == []
    wrong = report.replace(b'"SECURITY"', b'"SECURE"')
    assert request_problems("PUT", path, headers=headers, body=wrong)
    too_many = b'[' + b",".join([b'{"type": "report_annotation", "external_id": "x", "summary": "s"}'] * 101) + b']'
    assert request_problems("POST", path + "/annotations", headers=headers, body=too_many)

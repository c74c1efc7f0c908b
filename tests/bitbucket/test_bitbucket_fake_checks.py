"""The fake Bitbucket is only as good as its checks: it refuses what Bitbucket's description refuses."""

from __future__ import annotations

import httpx

from tests.bitbucket.bitbucket_api_check import request_problems
from tests.bitbucket.bitbucket_scenario import PR, REPO, build_world
from tests.bitbucket.fake_bitbucket import FakeBitbucket


def test_requests_outside_the_description_are_refused_and_recorded(fake: FakeBitbucket) -> None:
    build_world(fake)
    fake.grant("t-0123456789", "workspace", "acme")
    auth = {"Authorization": "Bearer t-0123456789"}
    comments = f"{fake.base_url}/repositories/{REPO}/pullrequests/{PR}/comments"
    bad = httpx.post(comments, json={"content": {"raw": "no type"}}, headers=auth)  # `type` is required
    unknown = httpx.get(f"{fake.base_url}/repositories/{REPO}/refs/branches", headers=auth)
    assert bad.status_code == 400 and unknown.status_code == 400
    assert len(fake.problems) == 2
    fake.problems.clear()
    good = httpx.post(comments, json={"type": "pullrequest_comment", "content": {"raw": "ok"}}, headers=auth)
    assert good.status_code == 201


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

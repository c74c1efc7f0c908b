"""The whole story, through the public API and a real receiver: an admin adds a webhook and
presses test; a base scan, two identical PR scans and the merged branch later, the
receiver has every finding exactly once, in Semgrep's format, signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.notify.helpers import (
    SHA_MAIN,
    SHA_MERGED,
    SHA_PR,
    Receiver,
    fingerprint_of,
    make_finding,
    run_jobs,
    scan_body,
    upload,
    verify_standard_webhook,
)

API = "/api/v1/integrations"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "semgrep-webhooks"


def test_admin_story(client: Any, app: Any, storage: Any, admin_headers: dict[str, str], upload_token: str) -> None:
    example_finding = json.loads((FIXTURES / "findings.json").read_text())[0]["semgrep_finding"]
    example_scan = json.loads((FIXTURES / "scan.json").read_text())["semgrep_scan"]
    with Receiver() as receiver:
        # 1. the admin adds a webhook and presses "test"
        made = client.post(API, json={"type": "webhook", "name": "SIEM", "url": receiver.url, "secret": True,
                                      "filters": {"repositories": ["octo/*"]}}, headers=admin_headers)
        assert made.status_code == 201
        hook = made.json()
        secret = hook.pop("secret")
        tested = client.post(f"{API}/{hook['id']}/test", headers=admin_headers).json()
        assert tested["ok"] is True and tested["status_code"] == 200 and tested["error"] is None
        [test_delivery] = client.get(f"{API}/{hook['id']}/deliveries", headers=admin_headers).json()
        assert test_delivery["kind"] == "test" and test_delivery["status"] == "succeeded"
        receiver.requests.clear()

        # 2. the base branch, then a PR with two new findings, the same PR again, then the merge
        a, b = make_finding("a", line=10), make_finding("b", line=20, severity="warning")
        c, d = make_finding("c", line=30), make_finding("d", path="app/db.py", line=5, severity="info")
        base = upload(client, upload_token, scan_body([a, b], commit=SHA_MAIN, branch="main"))
        run_jobs(app)
        pr = scan_body([a, b, c, d], commit=SHA_PR, branch="feature", base_branch="main", pull_request=7,
                       meta={"pull_request_title": "Add db", "ci_job_url": "https://ci.example/7"})
        pr1 = upload(client, upload_token, pr)
        run_jobs(app)
        pr2 = upload(client, upload_token, pr)
        run_jobs(app)
        moved = [make_finding("a", line=12), make_finding("b", line=22, severity="warning"),
                 make_finding("c", line=32), make_finding("d", path="app/db.py", line=5, severity="info")]
        merged = upload(client, upload_token, scan_body(moved, commit=SHA_MERGED, branch="main"))
        run_jobs(app)

    # the merge made c and d "new" on main again: the ledger, not the triage, kept them quiet
    assert sorted(sf.finding.fingerprint.value for sf in storage.scan_findings(merged["id"], ["new"])) == \
        sorted([fingerprint_of("c"), fingerprint_of("d")])
    assert storage.scan_findings(pr2["id"], ["new"]), "the second PR scan still reports c and d as new"

    # every request is signed, Standard Webhooks style
    for request in receiver.requests:
        assert verify_standard_webhook(secret, request.headers, request.body), request.body[:200]

    # each finding exactly once, with its stable identity as id
    ids = receiver.finding_ids()
    assert sorted(ids) == sorted(fingerprint_of(n) for n in "abcd")
    assert len(ids) == len(set(ids)) == 4
    posts = receiver.findings_posts()
    assert len(posts) == 2, "one findings POST for the base scan, one for the PR"
    pr_items = [item["semgrep_finding"] for item in posts[1].json()]
    assert {i["id"] for i in pr_items} == {fingerprint_of("c"), fingerprint_of("d")}
    for item in pr_items:
        assert list(item) == list(example_finding)
        for key, value in example_finding.items():
            assert type(item[key]) is type(value), (key, item[key])  # never null where the example has a value
        assert item["ref"] == "refs/heads/feature"
        assert item["first_seen_scan_id"] == str(pr1["id"])
        assert item["metadata"]["semgrep.policy"]["slug"] == "comment"
    by_id = {i["id"]: i for i in pr_items}
    assert by_id[fingerprint_of("d")]["path"] == "app/db.py" and by_id[fingerprint_of("d")]["severity"] == 0
    assert by_id[fingerprint_of("c")]["line"] == 30 and by_id[fingerprint_of("c")]["severity"] == 2

    # one scan summary per scan, in the documented shape
    summaries = [r.json()["semgrep_scan"] for r in receiver.scan_posts()]
    assert [s["id"] for s in summaries] == [str(x["id"]) for x in (base, pr1, pr2, merged)]
    for s in summaries:
        assert list(s) == list(example_scan)
        for key, value in example_scan.items():
            if value is not None:  # completed_at, exit_code: null in the example (a running scan)
                assert type(s[key]) is type(value), (key, s[key])
    assert [s["on"] for s in summaries] == ["push", "pull_request", "pull_request", "push"]
    assert summaries[1]["pull_request_id"] == "7" and summaries[1]["pull_request_title"] == "Add db"
    assert summaries[1]["ci_job_url"] == "https://ci.example/7" and summaries[1]["exit_code"] == 0
    assert len(receiver.requests) == 2 + 4

    # and the deliveries list tells the same story
    listed = client.get(f"{API}/{hook['id']}/deliveries", headers=admin_headers).json()
    assert all(d["status"] == "succeeded" for d in listed)
    assert sorted(d["kind"] for d in listed) == ["findings", "findings", "scan", "scan", "scan", "scan", "test"]
    webhook_ids = {d["webhook_id"] for d in listed}
    assert {r.headers["webhook-id"] for r in receiver.requests} <= webhook_ids

"""Each finding goes to each integration once: the ledger, the filters, and retried jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from forge_app.notify.fanout import notify_scan
from storage import Job
from tests.notify.helpers import (
    SHA_MAIN,
    SHA_PR,
    Receiver,
    fingerprint_of,
    make_finding,
    run_jobs,
    scan_body,
    upload,
)

API = "/api/v1/integrations"


def add(client: Any, headers: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    body = {"type": "webhook", "url": url, **extra}
    r = client.post(API, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_the_same_scan_uploaded_twice_sends_nothing_twice(client: Any, app: Any, admin_headers: dict[str, str],
                                                          upload_token: str) -> None:
    findings = [make_finding("a"), make_finding("b", line=20)]
    pr = scan_body(findings, commit=SHA_PR, branch="feature", base_branch="main", pull_request=7)
    with Receiver() as receiver:
        add(client, admin_headers, receiver.url)
        first = upload(client, upload_token, pr)
        run_jobs(app)
        second = upload(client, upload_token, pr)
        run_jobs(app)
    assert sorted(receiver.finding_ids()) == sorted([fingerprint_of("a"), fingerprint_of("b")])
    assert len(receiver.findings_posts()) == 1
    scans = [r.json()["semgrep_scan"]["id"] for r in receiver.scan_posts()]
    assert scans == [str(first["id"]), str(second["id"])], "one summary per scan, never the same one twice"


def test_base_branch_findings_are_never_forwarded_from_a_pr(client: Any, app: Any, admin_headers: dict[str, str],
                                                           upload_token: str) -> None:
    upload(client, upload_token, scan_body([make_finding("old")], commit=SHA_MAIN, branch="main"))
    run_jobs(app)
    with Receiver() as receiver:
        add(client, admin_headers, receiver.url, events=["findings"])  # created after the base scan
        moved_old = make_finding("old", line=40)  # same code, lines moved: still the base finding
        upload(client, upload_token, scan_body([moved_old, make_finding("new", line=5)], commit=SHA_PR,
                                               branch="feature", base_branch="main", pull_request=3))
        run_jobs(app)
    assert receiver.finding_ids() == [fingerprint_of("new")]


def test_a_retried_notify_job_claims_nothing_twice(client: Any, app: Any, storage: Any,
                                                   admin_headers: dict[str, str], upload_token: str) -> None:
    with Receiver() as receiver:
        add(client, admin_headers, receiver.url)
        scan = upload(client, upload_token, scan_body([make_finding("a")], commit=SHA_MAIN, branch="main"))
        run_jobs(app)
        job = Job(id=0, kind="notify_scan", payload={"scan_id": scan["id"]}, key=None, group=None, attempts=2,
                  max_attempts=12)
        asyncio.run(notify_scan(app.state.job_context, job))  # as if the worker died before marking it done
        asyncio.run(notify_scan(app.state.job_context, job))
        run_jobs(app)
    assert receiver.finding_ids() == [fingerprint_of("a")]
    assert len(receiver.scan_posts()) == 1
    assert len(storage.jobs(kind="deliver_notification")) == 2


def test_each_integration_gets_each_finding_once(client: Any, app: Any, admin_headers: dict[str, str],
                                                 upload_token: str) -> None:
    with Receiver() as one, Receiver() as two:
        add(client, admin_headers, one.url)
        upload(client, upload_token, scan_body([make_finding("a")], commit=SHA_MAIN, branch="main"))
        run_jobs(app)
        add(client, admin_headers, two.url)  # arrives later: gets only what is new from now on
        upload(client, upload_token, scan_body([make_finding("a"), make_finding("b", line=30)], commit=SHA_PR,
                                               branch="main"))
        run_jobs(app)
    assert sorted(one.finding_ids()) == sorted([fingerprint_of("a"), fingerprint_of("b")])
    assert two.finding_ids() == [fingerprint_of("b")]


def test_filters(client: Any, app: Any, admin_headers: dict[str, str], upload_token: str) -> None:
    with Receiver() as other_repo, Receiver() as globbed, Receiver() as blocking, Receiver() as scans_only, \
            Receiver() as disabled:
        add(client, admin_headers, other_repo.url, filters={"repositories": ["octo/other"]})
        add(client, admin_headers, globbed.url, filters={"repositories": ["OCTO/*"]})
        add(client, admin_headers, blocking.url, filters={"policies": ["block"]})
        add(client, admin_headers, scans_only.url, events=["scan"])
        add(client, admin_headers, disabled.url, enabled=False)
        client.put("/api/v1/policies", headers=admin_headers,
                   json={"default": "comment", "rules": {"python.lang.security.eval": "block"}})
        upload(client, upload_token, scan_body(
            [make_finding("blocker"), make_finding("chatty", rule="python.style.print", line=50, severity="info")],
            commit=SHA_MAIN, branch="main"))
        run_jobs(app)
    assert other_repo.requests == [] and disabled.requests == []
    assert sorted(globbed.finding_ids()) == sorted([fingerprint_of("blocker"), fingerprint_of("chatty")])
    assert blocking.finding_ids() == [fingerprint_of("blocker")]
    [item] = blocking.findings_posts()[0].json()
    assert item["semgrep_finding"]["metadata"]["semgrep.policy"]["slug"] == "block"
    assert scans_only.finding_ids() == [] and len(scans_only.scan_posts()) == 1
    assert scans_only.scan_posts()[0].json()["semgrep_scan"]["exit_code"] == 1


def test_nothing_new_means_no_findings_post(client: Any, app: Any, admin_headers: dict[str, str],
                                            upload_token: str) -> None:
    with Receiver() as receiver:
        add(client, admin_headers, receiver.url)
        upload(client, upload_token, scan_body([], commit=SHA_MAIN, branch="main"))
        run_jobs(app)
    assert receiver.findings_posts() == [] and len(receiver.scan_posts()) == 1


def test_monitor_findings_are_forwarded_by_default_and_can_be_left_out(client: Any, app: Any,
                                                                       admin_headers: dict[str, str],
                                                                       upload_token: str) -> None:
    """`filters.policies` defaults to all three modes, monitor included (docs/notifications.md)."""
    with Receiver() as everything, Receiver() as no_monitor:
        made = add(client, admin_headers, everything.url)
        assert made["filters"]["policies"] == ["monitor", "comment", "block"]
        add(client, admin_headers, no_monitor.url, filters={"policies": ["comment", "block"]})
        client.put("/api/v1/policies", headers=admin_headers,
                   json={"default": "comment", "rules": {"python.style.*": "monitor"}})
        upload(client, upload_token, scan_body(
            [make_finding("loud"), make_finding("quiet", rule="python.style.print", line=50, severity="info")],
            commit=SHA_MAIN, branch="main"))
        run_jobs(app)
    assert sorted(everything.finding_ids()) == sorted([fingerprint_of("loud"), fingerprint_of("quiet")])
    quiet = next(i["semgrep_finding"] for r in everything.findings_posts() for i in r.json()
                 if i["semgrep_finding"]["id"] == fingerprint_of("quiet"))
    assert quiet["metadata"]["semgrep.policy"]["slug"] == "monitor" and quiet["metadata"]["dev.semgrep.actions"] == []
    assert no_monitor.finding_ids() == [fingerprint_of("loud")]

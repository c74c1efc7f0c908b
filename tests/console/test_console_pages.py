"""Console forms and pages through the TestClient: integrations, rule board, projects, scans."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from forge_app.web.app import create_app
from tests.console.helpers import sign_in
from tests.notify.helpers import Receiver, Reply
from tests.web.scan_helpers import SHA_BASE, SHA_HEAD, finding, upload


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def signed(client) -> tuple[TestClient, str]:
    return client, sign_in(client)


def _status(html: str) -> str:
    match = re.search(r'role="status"[^>]*>([^<]*)<', html)
    assert match, "no role=status element"
    return match.group(1)


def test_empty_list_offers_setup_first_integration(signed):
    client, _ = signed
    page = client.get("/settings/integrations").text
    assert "Setup first integration" in page and "Add integration" not in page.split("<main")[1].split("Setup")[0]
    choose = client.get("/settings/integrations/new").text
    for label in ("Webhook", "Slack", "Email"):
        assert f">{label}</a>" in choose
    form = client.get("/settings/integrations/new/webhook").text
    assert '<label for="name">Name</label>' in form and '<label for="url">Webhook URL</label>' in form
    assert ">Test</button>" in form and ">Save</button>" in form


def test_test_then_save_a_webhook(signed, receiver, storage, admin_headers):
    client, csrf = signed
    fields = {"csrf": csrf, "name": "Security team", "url": receiver.url, "policies": ["monitor", "comment", "block"]}
    r = client.post("/settings/integrations/new/webhook", data={**fields, "action": "test"})
    assert r.status_code == 200
    assert re.match(r"Test succeeded: HTTP 200, \d+ ms", _status(r.text))
    assert len(receiver.requests) == 1 and isinstance(receiver.requests[0].json(), list)
    assert storage.list_integrations() == []  # Test saves nothing
    assert f'value="{receiver.url}"' in r.text  # the form keeps what was typed
    r = client.post("/settings/integrations/new/webhook", data={**fields, "action": "save"}, follow_redirects=False)
    assert r.status_code == 303
    listed = client.get("/settings/integrations").text
    assert "Security team" in listed and "Add integration" in listed
    api = client.get("/api/v1/integrations", headers=admin_headers).json()
    assert [(i["name"], i["url"], i["type"]) for i in api] == [("Security team", receiver.url, "webhook")]


def test_test_reports_the_failure_status(signed, receiver):
    client, csrf = signed
    receiver.script(Reply(status=500, body=b"boom"))
    r = client.post("/settings/integrations/new/webhook",
                    data={"csrf": csrf, "name": "x", "url": receiver.url, "policies": "block", "action": "test"})
    assert _status(r.text).startswith("Test failed: HTTP 500")


def test_unsafe_target_is_refused_in_words(settings, storage):
    app = create_app(replace(settings, allow_private_targets=False), storage, run_worker=False)
    with TestClient(app) as client:
        csrf = sign_in(client)
        data = {"csrf": csrf, "name": "x", "url": "http://127.0.0.1:9/hook", "policies": "block"}
        r = client.post("/settings/integrations/new/webhook", data={**data, "action": "test"})
        text = _status(r.text)
        assert text.startswith("Test failed: nothing was sent") and "refused" in text
        r = client.post("/settings/integrations/new/webhook", data={**data, "action": "save"})
        assert r.status_code == 400 and "refused" in r.text
        assert storage.list_integrations() == []


def test_bad_input_shows_the_api_validation_message(signed, storage):
    client, csrf = signed
    r = client.post("/settings/integrations/new/webhook",
                    data={"csrf": csrf, "name": "x", "url": "ftp://example.com", "policies": "block", "action": "save"})
    assert r.status_code == 400 and 'role="alert"' in r.text and "url" in r.text
    r = client.post("/settings/integrations/new/email",
                    data={"csrf": csrf, "name": "x", "addresses": "not-an-address", "policies": "block",
                          "action": "save"})
    assert r.status_code == 400 and "email address" in r.text
    r = client.post("/settings/integrations/new/webhook",
                    data={"csrf": csrf, "name": "x", "url": "https://example.com/h", "action": "save"})
    assert r.status_code == 400 and "policies" in r.text  # no column chosen
    assert client.get("/settings/integrations/new/carrier-pigeon").status_code == 404
    assert storage.list_integrations() == []


def test_signing_secret_is_shown_once(signed, receiver, admin_headers):
    client, csrf = signed
    r = client.post("/settings/integrations/new/webhook",
                    data={"csrf": csrf, "name": "signed", "url": receiver.url, "sign": "on",
                          "policies": ["block"], "action": "save"})
    secret = re.search(r'value="(whsec_[^"]+)"', r.text)
    assert r.status_code == 200 and secret
    [doc] = client.get("/api/v1/integrations", headers=admin_headers).json()
    assert doc["has_secret"] is True and "secret" not in doc
    assert secret.group(1) not in client.get(f"/settings/integrations/{doc['id']}").text


def test_edit_disable_test_and_delete(signed, receiver, storage):
    client, csrf = signed
    i = storage.create_integration("webhook", "hook", {"url": receiver.url, "events": ["findings", "scan"]}, None,
                                   {"repositories": [], "policies": ["block"]})
    r = client.post(f"/settings/integrations/{i.id}", data={"csrf": csrf, "action": "test"})
    assert "Test succeeded: HTTP 200" in _status(r.text)
    assert "succeeded" in client.get(f"/settings/integrations/{i.id}").text  # recent deliveries
    r = client.post(f"/settings/integrations/{i.id}",
                    data={"csrf": csrf, "action": "save", "name": "renamed", "url": receiver.url,
                          "policies": ["comment", "block"], "repositories": "octo/*", "enabled": "on"},
                    follow_redirects=False)
    assert r.status_code == 303
    i2 = storage.integration(i.id)
    assert i2.name == "renamed" and i2.filters == {"repositories": ["octo/*"], "policies": ["comment", "block"]}
    client.post(f"/settings/integrations/{i.id}", data={"csrf": csrf, "action": "disable"})
    assert storage.integration(i.id).enabled is False
    confirm = client.get(f"/settings/integrations/{i.id}/delete").text
    assert "cannot be undone" in confirm
    client.post(f"/settings/integrations/{i.id}/delete", data={"csrf": csrf})
    assert storage.integration(i.id) is None
    assert client.get(f"/settings/integrations/{i.id}").status_code == 404


def test_rule_board_columns_moves_and_globs(signed, storage, upload_token, admin_headers):
    client, csrf = signed
    auth = {"Authorization": f"Bearer {upload_token}"}
    client.post("/api/v1/scans", json=upload([finding("py.eval"), finding("py.exec", line=9, code="exec(y)")]),
                headers=auth)
    page = client.get("/rules").text
    for heading in ("Monitor", "Comment", "Block"):
        assert f">{heading}</h2>" in page and f"Notification settings for {heading}" in page
    assert "py.eval" in page and "py.exec" in page
    client.post("/rules", data={"csrf": csrf, "pattern": "py.eval", "mode": "block"})
    client.post("/rules", data={"csrf": csrf, "pattern": "py.*", "mode": "monitor"})
    policies = client.get("/api/v1/policies", headers=admin_headers).json()
    assert policies == {"default": "comment", "rules": {"py.*": "monitor", "py.eval": "block"}}
    page = client.get("/rules").text
    assert "py.eval" in page.split(">Block</h2>")[1]
    assert "by glob py.*" in page
    client.post("/rules", data={"csrf": csrf, "pattern": "py.*", "action": "remove"})
    assert client.get("/api/v1/policies", headers=admin_headers).json()["rules"] == {"py.eval": "block"}
    r = client.post("/rules", data={"csrf": csrf, "pattern": "x", "mode": "shout"}, follow_redirects=True)
    assert "mode must be one of" in r.text


def test_notification_switches_equal_filters_policies(signed, storage, admin_headers):
    client, csrf = signed
    i = storage.create_integration("webhook", "Ops hook", {"url": "https://example.com/h", "events": ["findings"]},
                                   None, {"repositories": [], "policies": ["comment"]})
    page = client.get("/rules").text
    assert f'<label for="sw-block-{i.id}">Ops hook</label>' in page
    assert 'role="switch"' in page
    client.post("/rules/notifications", data={"csrf": csrf, "column": "block", "shown": str(i.id), "on": str(i.id)})
    doc = client.get(f"/api/v1/integrations/{i.id}", headers=admin_headers).json()
    assert doc["filters"]["policies"] == ["comment", "block"]
    client.post("/rules/notifications", data={"csrf": csrf, "column": "comment", "shown": str(i.id)})
    assert storage.integration(i.id).filters["policies"] == ["block"]
    # switching off its last column would mean "everything" in the API: refused, said in words
    r = client.post("/rules/notifications", data={"csrf": csrf, "column": "block", "shown": str(i.id)},
                    follow_redirects=True)
    assert "would receive nothing" in r.text and storage.integration(i.id).filters["policies"] == ["block"]


def test_projects_repository_and_scan_pages(signed, storage, upload_token):
    client, _ = signed
    auth = {"Authorization": f"Bearer {upload_token}"}
    client.post("/api/v1/scans", json=upload([finding("py.eval"), finding("py.exec", line=9, code="exec(y)",
                                                                           severity="warning")], commit=SHA_BASE),
                headers=auth)
    r = client.post("/api/v1/scans", json=upload([finding("py.eval"), finding("py.new", line=20, code="new()")],
                                                 commit=SHA_HEAD, pr=7, branch="feature", base_branch="main"),
                    headers=auth)
    pr_scan = r.json()["id"]
    projects = client.get("/projects").text
    repo = storage.find_repository("github", "octo/demo")
    assert f'href="/projects/{repo.id}">octo/demo</a>' in projects
    page = client.get(f"/projects/{repo.id}").text
    assert "Open findings (2)" in page and "<svg" in page
    assert "https://github.com/octo/demo/pull/7" in page
    assert f"https://github.com/octo/demo/blob/{SHA_BASE}/app/main.py#L9" in page
    only = client.get(f"/projects/{repo.id}", params={"severity": "warning"}).text
    assert "Open findings (1)" in only and "py.exec" in only.split("Open findings (1)")[1].split("Scans (")[0]
    assert "Open findings (0)" in client.get(f"/projects/{repo.id}", params={"path": "nope/"}).text
    assert "Open findings (1)" in client.get(f"/projects/{repo.id}", params={"rule": "py.eval"}).text
    scan = client.get(f"/scans/{pr_scan}").text
    assert "New (1)" in scan and "Fixed (1)" in scan and "Unchanged (1)" in scan
    assert "py.new" in scan.split("New (1)")[1].split("Fixed (1)")[0]
    assert client.get("/scans/99999").status_code == 404
    assert client.get("/projects/abc").status_code == 404


def test_scan_api_link_opens_the_scan_page_in_a_browser(signed, upload_token):
    client, _ = signed
    r = client.post("/api/v1/scans", json=upload([finding()]), headers={"Authorization": f"Bearer {upload_token}"})
    scan_id = r.json()["id"]
    browser = client.get(f"/api/v1/scans/{scan_id}", headers={"Accept": "text/html,application/xhtml+xml"},
                         follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == f"/scans/{scan_id}"
    api = client.get(f"/api/v1/scans/{scan_id}", headers={"Authorization": f"Bearer {upload_token}",
                                                          "Accept": "text/html"})
    assert api.json()["id"] == scan_id


def test_findings_are_paginated(signed, upload_token, storage):
    client, _ = signed
    findings = [finding(f"rule.{i % 3}", path=f"src/f{i:03}.py", line=i + 1, code=f"x{i}()") for i in range(120)]
    client.post("/api/v1/scans", json=upload(findings, commit=SHA_BASE),
                headers={"Authorization": f"Bearer {upload_token}"})
    repo = storage.find_repository("github", "octo/demo")
    first = client.get(f"/projects/{repo.id}").text
    assert "Page 1 of 3 (120)" in first and first.count("<tr>") >= 50
    last = client.get(f"/projects/{repo.id}", params={"page": "3"}).text
    assert "Page 3 of 3" in last and 'rel="prev"' in last
    assert client.get(f"/projects/{repo.id}", params={"page": "999"}).status_code == 200


def test_rules_served_to_semgrep_ci_are_on_the_board(signed, admin_headers):
    client, _ = signed
    rules = ("rules:\n"
             "  - id: served.blocker\n    pattern: eval($X)\n    message: m\n    languages: [python]\n"
             "    severity: ERROR\n    metadata:\n      dev.semgrep.actions: [block]\n"
             "  - id: served.plain\n    pattern: exec($X)\n    message: m\n    languages: [python]\n"
             "    severity: INFO\n")
    assert client.put("/api/v1/rules/ci.yml", content=rules, headers=admin_headers).status_code == 201
    page = client.get("/rules").text
    block = page.split(">Block</h2>")[1]
    assert "served.blocker" in block and "by the rule&#39;s own dev.semgrep.actions" in block
    comment = page.split(">Comment</h2>")[1].split(">Block</h2>")[0]
    assert "served.plain" in comment and "served to semgrep ci" in comment


"""Input an attacker or a broken CI job sends: always a JSON 4xx naming the problem, never a 5xx,
and nothing half-stored. Each test here failed (500, or the input was stored) before the fix."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import hmac
import json
import logging

import pytest
from starlette.testclient import TestClient

from forge_app.web.app import create_app
from tests.web.scan_helpers import finding, upload

DEEP = b"[" * 10_000 + b"]" * 10_000
GH_SECRET = "hostile-webhook-secret-0123456789"


def _json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    if code:
        assert body["error"] == code, body
    return body


def _nothing_stored(storage) -> None:
    assert storage.database.one("SELECT COUNT(*) AS n FROM scans")["n"] == 0
    assert storage.database.one("SELECT COUNT(*) AS n FROM jobs")["n"] == 0


@pytest.fixture
def post_scan(client, upload_token):
    def send(doc, headers: dict[str, str] | None = None):
        content = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return client.post("/api/v1/scans", content=content, headers={
            "Authorization": f"Bearer {upload_token}", "Content-Type": "application/json", **(headers or {})})
    return send


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/scans"), ("POST", "/api/v1/integrations"), ("POST", "/api/v1/connections"),
    ("PUT", "/api/v1/policies"), ("PATCH", "/api/v1/integrations/1"),
])
def test_deeply_nested_json_is_a_400_on_every_json_route(client, upload_token, admin_headers, storage, method, path):
    token = {"Authorization": f"Bearer {upload_token}"} if path == "/api/v1/scans" else admin_headers
    if method == "PATCH":
        created = client.post("/api/v1/integrations", json={"type": "webhook", "url": "https://example.com/h"},
                              headers=admin_headers)
        assert created.status_code == 201, created.text
    response = client.request(method, path, content=DEEP, headers={**token, "Content-Type": "application/json"})
    assert "nested" in _json_error(response, 400, "invalid_json")["detail"]


def test_deep_json_in_a_signed_github_webhook_is_a_400(settings, storage):
    signed = dataclasses.replace(settings, github_webhook_secret=GH_SECRET)
    for body in (DEEP, b'{"action": "opened", "number": 18446744073709551615, "a":' + b"[" * 200 + b"]" * 200
                 + b"}"):
        sig = "sha256=" + hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
        with TestClient(create_app(signed, storage, run_worker=False)) as c:
            response = c.post("/webhooks/github", content=body, headers={
                "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": sig,
                "Content-Type": "application/json"})
        _json_error(response, 400, "invalid_json")
    assert storage.jobs(kind="github_event") == []


def test_integers_sqlite_cannot_store_are_refused(client, admin_headers):
    body = b'{"type": "webhook", "url": "https://example.com/h", "enabled": true, "n": 9223372036854775808}'
    _json_error(client.post("/api/v1/integrations", content=body,
                            headers={**admin_headers, "Content-Type": "application/json"}), 400, "invalid_json")


@pytest.mark.parametrize("number", [2**63, 2**64 - 1, 2**31])
def test_huge_pull_request_number_is_a_400(post_scan, storage, number):
    doc = upload([finding()])
    doc["pull_request"] = number
    assert "pull_request" in _json_error(post_scan(doc), 400)["detail"]
    _nothing_stored(storage)


def test_sarif_start_line_beyond_the_limit_is_a_400(post_scan, storage):
    sarif = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep"}}, "results": [
        {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "a.py"}, "region": {"startLine": 2**63}}}]}]}]}
    response = post_scan({"commit": "a" * 40, "report": sarif})
    assert response.status_code == 400, response.text
    _nothing_stored(storage)


@pytest.mark.parametrize("raw", ["1", "99999999999999999999999", "%C2%B9", "%D9%A3", "-1", "1.0"])
def test_odd_ids_in_urls_are_404(client, admin_headers, upload_token, raw):
    if raw != "1":
        _json_error(client.get(f"/api/v1/integrations/{raw}", headers=admin_headers), 404, "not_found")
        _json_error(client.delete(f"/api/v1/connections/{raw}", headers=admin_headers), 404, "not_found")
    _json_error(client.get(f"/api/v1/scans/{raw}", headers=admin_headers), 404, "not_found")


def test_lone_surrogate_and_nul_in_a_path_are_refused(post_scan, storage):
    body = json.dumps(upload([finding()])).replace('"app/main.py"', '"app/\\ud800.py"').encode()
    _json_error(post_scan(body), 400, "invalid_json")
    bad = finding()
    bad["path"] = "app/ma\x00in.py"
    assert "/findings/0/path" in _json_error(post_scan(upload([bad])), 400)["detail"]
    bad = finding()
    bad["rule_id"] = "rule\ud800"
    # json.dumps writes the surrogate as an escape, which orjson refuses
    _json_error(post_scan(upload([bad])), 400, "invalid_json")
    _nothing_stored(storage)


def test_path_over_4_kb_is_refused_naming_the_finding(post_scan, storage):
    long = finding(path="d/" * 2100 + "x.py")
    body = _json_error(post_scan(upload([finding(), long])), 400, "invalid_finding")
    assert "finding 1" in body["detail"] and "/findings/1" in body["detail"] and "4 KB" in body["detail"]
    _nothing_stored(storage)


def test_url_over_2_kb_is_refused_naming_the_finding(post_scan, storage):
    bad = finding()
    bad["help_uri"] = "https://example.com/" + "a" * 2100
    body = _json_error(post_scan(upload([bad])), 400, "invalid_finding")
    assert "finding 0" in body["detail"] and "2 KB" in body["detail"]
    _nothing_stored(storage)


def test_long_message_and_metadata_are_cut_with_a_note(post_scan, storage, client, admin_headers):
    noisy = finding(metadata={"blob": "m" * 100_000})
    noisy["message"] = "x" * 200_000
    response = post_scan(upload([noisy]))
    assert response.status_code == 201, response.text
    scan = response.json()
    assert any("cut to 64 KB" in e and "message" in e and "metadata" in e for e in scan["errors"]), scan["errors"]
    stored = client.get(f"/api/v1/scans/{scan['id']}?findings=all", headers=admin_headers).json()["findings"][0]
    assert len(stored["message"].encode()) <= 64 * 1024 and stored["message"].endswith("over 64 KB)")
    assert "blob" not in stored["metadata"]


@pytest.mark.parametrize("path", ["file:///etc/passwd", "file:/etc/passwd", "https://evil.example/x.py"])
def test_uri_paths_are_never_stored(post_scan, storage, path):
    bad = finding()
    bad["path"] = path
    _json_error(post_scan(upload([bad])), 400)
    sarif = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep"}}, "results": [
        {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": path}, "region": {"startLine": 1}}}]}]}]}
    _json_error(post_scan({"commit": "a" * 40, "report": sarif}), 400)
    _nothing_stored(storage)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_uploads_that_are_not_json_get_415(post_scan, storage, content_type):
    _json_error(post_scan(upload([finding()]), {"Content-Type": content_type}), 415, "unsupported_media_type")
    _nothing_stored(storage)


def test_sarif_content_type_is_json(post_scan):
    assert post_scan(upload([finding()]), {"Content-Type": "application/sarif+json"}).status_code == 201


def test_admin_routes_refuse_text_plain(client, admin_headers):
    r = client.post("/api/v1/integrations", content=b'{"type": "webhook", "url": "https://example.com/h"}',
                    headers={**admin_headers, "Content-Type": "text/plain"})
    _json_error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("token", ["glpat-ünïcode", "tok en", "x" * 5000, "line\nbreak"])
def test_connection_token_that_cannot_go_in_a_header_is_a_400(client, admin_headers, token):
    r = client.post("/api/v1/connections", json={"forge": "gitlab", "scope": "project", "target": "acme/shop",
                                                 "base_url": "https://gitlab.example.com", "token": token,
                                                 "webhook_secret": "s3cret"}, headers=admin_headers)
    assert "token" in _json_error(r, 400, "invalid_connection")["detail"]


@pytest.mark.parametrize("url", ["https://example.com:0/hook", "http://example.com:00/hook"])
def test_port_zero_is_refused_for_integrations(client, admin_headers, url):
    r = client.post("/api/v1/integrations", json={"type": "webhook", "url": url}, headers=admin_headers)
    assert r.status_code == 400, r.text
    assert "port" in r.json()["detail"]


def test_too_many_results_are_refused_before_parsing(client, upload_token, post_scan, storage):
    from forge_app.core.limits import MAX_RESULTS

    result = {"check_id": "r", "path": "a.py", "start": {"line": 1, "col": 1}, "end": {"line": 1, "col": 2},
              "extra": {"message": "m", "severity": "ERROR", "lines": "x"}}
    raw = json.dumps({"results": [result] * (MAX_RESULTS + 1), "errors": []}).encode()
    response = client.post(f"/api/v1/scans?commit={'a' * 40}", content=gzip.compress(raw), headers={
        "Authorization": f"Bearer {upload_token}", "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert f"{MAX_RESULTS:,}" in _json_error(response, 413, "too_many_results")["detail"]
    one = finding()
    _json_error(post_scan(upload([one] * (MAX_RESULTS + 1))), 413, "too_many_results")
    _nothing_stored(storage)


def test_redaction_keeps_uvicorn_access_lines(caplog):
    from uvicorn.logging import AccessFormatter

    from forge_app.logging_setup import RedactingFilter

    args = ("1.2.3.4:5", "GET", "/x?token=glpat-abcdefghijklmnop", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "x", 1, '%s - "%s %s HTTP/%s" %d', args, None)
    assert RedactingFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert "glpat-abcdefghijklmnop" not in line and "token=***" in line and "200" in line
    assert args[2].endswith("glpat-abcdefghijklmnop")  # the caller's tuple is untouched


def test_client_disconnect_is_a_debug_line_without_traceback(caplog):
    from starlette.requests import Request

    from forge_app.web.body import read_raw
    from forge_app.web.errors import ApiError

    async def receive():
        return {"type": "http.disconnect"}

    request = Request({"type": "http", "method": "POST", "path": "/api/v1/scans", "headers": []}, receive)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ApiError) as info:
        asyncio.run(read_raw(request, 1024))
    assert info.value.code == "client_disconnected"
    assert all(r.levelno <= logging.DEBUG and not r.exc_info for r in caplog.records if "disconnect" in r.message)


def test_ten_megabyte_strings_are_refused_or_cut(post_scan, storage, settings):
    doc = upload([finding()])
    doc["meta"] = {"ci_job_url": "https://ci.example/" + "j" * 10_000_000}
    assert "meta.ci_job_url" in _json_error(post_scan(doc), 400)["detail"]
    doc["meta"] = {"ci_job_url": "https://ci.example/1", "commit_title": "t" * 10_000_000}
    response = post_scan(doc)
    assert response.status_code == 201, response.text
    signed = dataclasses.replace(settings, github_webhook_secret=GH_SECRET)
    body = json.dumps({"action": "opened", "pull_request": {"head": {"ref": "r" * 10_000_000}}}).encode()
    sig = "sha256=" + hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with TestClient(create_app(signed, storage, run_worker=False)) as c:
        r = c.post("/webhooks/github", content=body, headers={
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-big", "X-Hub-Signature-256": sig,
            "Content-Type": "application/json"})
    assert "string longer" in _json_error(r, 400, "invalid_json")["detail"]


def test_findings_are_serialized_before_the_write_lock(post_scan, storage, monkeypatch):
    """Seconds of CPU for a large upload must not hold SQLite's write lock (other repositories wait)."""
    from forge_app.core.models import Finding

    inside: list[bool] = []
    original = Finding.to_dict

    def spy(self):
        inside.append(storage.database.db.conn.in_transaction)
        return original(self)

    monkeypatch.setattr(Finding, "to_dict", spy)
    assert post_scan(upload([finding(), finding(rule="r2", line=8)])).status_code == 201
    assert inside and not any(inside)

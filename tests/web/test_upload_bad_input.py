"""Every bad upload gets a clear 4xx JSON error and stores nothing."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.web.scan_helpers import finding, upload


@pytest.fixture
def post(client, upload_token):
    def send(content: bytes, headers: dict[str, str] | None = None, query: str = ""):
        h = {"Authorization": f"Bearer {upload_token}", "Content-Type": "application/json", **(headers or {})}
        return client.post(f"/api/v1/scans{query}", content=content, headers=h)
    return send


def assert_rejected(response, status: int, code: str | None = None, storage=None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    if code:
        assert body["error"] == code
    if storage is not None:
        assert storage.database.one("SELECT COUNT(*) AS n FROM scans")["n"] == 0
        assert storage.database.one("SELECT COUNT(*) AS n FROM identities")["n"] == 0
        assert storage.database.one("SELECT COUNT(*) AS n FROM jobs")["n"] == 0
    return body


def test_body_that_is_not_json(post, storage):
    body = assert_rejected(post(b"{not json"), 400, "invalid_json", storage)
    assert "line 1" in body["detail"]


def test_json_that_is_neither_semgrep_nor_sarif(post, storage):
    assert_rejected(post(json.dumps({"commit": "a" * 40, "hello": 1}).encode()), 400, None, storage)
    assert_rejected(post(b"[1, 2]"), 400, None, storage)


def test_sarif_failing_the_schema_says_where(post, storage, fixtures):
    sarif = json.loads((fixtures / "sarif" / "examples" / "semgrep.with-autofix.sarif").read_text())
    sarif["runs"][0]["results"][0]["level"] = "catastrophic"
    body = assert_rejected(post(json.dumps({"commit": "a" * 40, "report": sarif}).encode()), 400, None, storage)
    assert "/report/runs/0/results/0" in body["detail"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.py", "src/../../x.py", "C:\\\\win.py"])
def test_paths_that_escape_the_repository(post, storage, path):
    bad = finding(path="ok.py")
    bad["path"] = path
    body = assert_rejected(post(json.dumps(upload([finding(), bad])).encode()), 400, None, storage)
    assert "/findings/1/path" in body["detail"]


@pytest.mark.parametrize("commit", ["abc123", "g" * 40, "", None, "a" * 41])
def test_commit_that_is_not_40_hex(post, storage, commit):
    doc = upload([finding()])
    doc["commit"] = commit
    body = assert_rejected(post(json.dumps(doc).encode()), 400, None, storage)
    assert "40" in body["detail"]


def test_oversized_body_is_413(client, upload_token, settings, storage):
    from dataclasses import replace

    from starlette.testclient import TestClient

    from forge_app.web.app import create_app

    small = create_app(replace(settings, max_body_bytes=1024), storage, run_worker=False)
    with TestClient(small) as c:
        r = c.post("/api/v1/scans", content=b"x" * 4096, headers={"Authorization": f"Bearer {upload_token}"})
    assert_rejected(r, 413, "payload_too_large", storage)


def test_gzip_bomb_is_413_without_inflating_it(client, upload_token, settings, storage):
    from dataclasses import replace

    from starlette.testclient import TestClient

    from forge_app.web.app import create_app

    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MB of zeros in ~50 KB
    app = create_app(replace(settings, max_inflated_bytes=1024 * 1024), storage, run_worker=False)
    with TestClient(app) as c:
        r = c.post("/api/v1/scans", content=bomb, headers={"Authorization": f"Bearer {upload_token}",
                                                           "Content-Encoding": "gzip"})
    assert_rejected(r, 413, "payload_too_large", storage)


def test_invalid_gzip_is_400(post, storage):
    assert_rejected(post(b"not gzip at all", {"Content-Encoding": "gzip"}), 400, "invalid_encoding", storage)


def test_one_bad_finding_rejects_the_whole_upload(post, storage):
    bad = finding()
    bad["start_line"] = 0
    assert_rejected(post(json.dumps(upload([finding(), bad])).encode()), 400, None, storage)


def test_tokens_never_appear_in_logs(client, upload_token, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    client.post("/api/v1/scans", json=upload([finding()]), headers={"Authorization": f"Bearer {upload_token}"})
    client.post("/api/v1/scans", json=upload([]), headers={"Authorization": "Bearer fa_upload_wrongwrongwrong"})
    assert upload_token not in caplog.text and "wrongwrongwrong" not in caplog.text

"""`forge-app upload` when the server answers `processing`: what it prints and how it exits
(the live-server runs are in tests/github/test_github_source_fetch.py)."""

from __future__ import annotations

import argparse

import pytest

from forge_app.cli import upload

SERVER_URL = "https://forge-app.example/api/v1/scans/7"  # what the server calls itself
URL = SERVER_URL  # what the CLI prints: the scan's URL as the server answered it (its public URL wins)


def _args() -> argparse.Namespace:
    return argparse.Namespace(server="http://127.0.0.1:1", token="fa_upload_x", timeout=5.0)


@pytest.fixture
def processing(monkeypatch):
    monkeypatch.setattr(upload, "build_envelope", lambda args, env: {})
    monkeypatch.setattr(upload, "post", lambda *a: {"id": 7, "url": SERVER_URL, "status": "processing", "counts": {}})


def test_a_scan_that_failed_on_the_server_exits_2_naming_the_reason(processing, monkeypatch, capsys):
    monkeypatch.setattr(upload, "wait_for_scan", lambda *a: {"id": 7, "url": SERVER_URL, "status": "failed",
                                                            "error_detail": "GitHub is failing (502)"})
    assert upload.run(_args()) == 2
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == URL
    assert "GitHub is failing (502)" in err and URL in err and len(err.strip().splitlines()) == 1


def test_a_completed_scan_decides_the_exit_code(processing, monkeypatch, capsys):
    done = {"id": 7, "url": SERVER_URL, "status": "done", "blocking": True, "pull_request": None,
            "counts": {"new": 1, "fixed": 0, "unchanged": 0}, "baseline_scan_id": None,
            "new_findings": [{"mode": "block", "path": "a.py", "line": 3, "rule_id": "r", "message": "m"}]}
    monkeypatch.setattr(upload, "wait_for_scan", lambda *a: done)
    assert upload.run(_args()) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "processing" in lines[0] and "1 new" in lines[1] and "BLOCK" in lines[2] and lines[-1] == URL


def test_polling_stops_at_the_timeout(monkeypatch):
    import httpx

    calls = []

    def get(url, **kw):
        calls.append(url)
        return httpx.Response(200, json={"id": 7, "status": "processing"})

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setattr(upload, "POLL_INTERVAL", 0.05)
    with pytest.raises(upload.UploadFailed) as failed:
        upload.wait_for_scan("http://server/", "t", {"id": 7, "url": SERVER_URL}, 0.3)
    assert "still processing" in str(failed.value) and SERVER_URL in str(failed.value)  # the public URL
    assert calls and set(calls) == {"http://server/api/v1/scans/7"}

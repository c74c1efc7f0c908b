"""The database goes away and comes back, on SQLite: `/readyz` follows it without a restart, a
delivery that cannot be stored is answered 503 with Retry-After (never a 500, never an ack), and
GitHub's redelivery afterwards is stored once."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from forge_app.web.app import create_app
from storage import open_storage
from tests.github.gh_helpers import deliver, pull_request_event, sha


def _delivery_rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM deliveries WHERE source = 'github'").fetchone()[0])


def test_readyz_follows_a_database_that_goes_away_and_comes_back(settings, tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    path = home / "forge-app.db"
    local = dataclasses.replace(settings, database=str(path))
    storage = open_storage(str(path))
    try:
        with TestClient(create_app(local, storage, run_worker=False)) as client:
            assert client.get("/readyz").status_code == 200
            home.rename(tmp_path / "away")  # the mount went away
            gone = client.get("/readyz")
            assert gone.status_code == 503 and gone.json()["error"] == "unavailable"
            assert gone.headers["retry-after"]
            assert client.get("/healthz").status_code == 200  # alive, just not ready
            (tmp_path / "away").rename(home)
            assert client.get("/readyz").status_code == 200  # back, without a restart
    finally:
        storage.close()


def test_a_delivery_that_cannot_be_stored_gets_503_and_its_redelivery_is_stored_once(settings, upload_token,
                                                                                      monkeypatch) -> None:
    import storage.database
    import storage.writer

    monkeypatch.setattr(storage.writer, "BUSY_TIMEOUT_MS", 300)  # give up on the lock quickly
    monkeypatch.setattr(storage.database, "BUSY_TIMEOUT_MS", 300)
    store = open_storage(settings.database)
    body = pull_request_event("opened", sha("recovery"))
    try:
        with TestClient(create_app(settings, store, run_worker=False), raise_server_exceptions=False) as client:
            assert deliver(client, "pull_request", body, delivery="warm-up").status_code == 202
            blocker = sqlite3.connect(settings.database, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock too long
            try:
                refused = deliver(client, "pull_request", body, delivery="d-1")
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "unavailable" and int(refused.headers["retry-after"]) > 0
                scan = {"repository": "octo/demo", "commit": sha("recovery-scan"), "branch": "main",
                        "findings": [], "tools": ["semgrep"]}
                auth = {"Authorization": f"Bearer {upload_token}"}
                upload = client.post("/api/v1/scans", json=scan, headers=auth)
                assert upload.status_code == 503 and upload.headers["retry-after"], upload.text
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert _delivery_rows(settings.database) == 1  # only the warm-up: nothing half-stored
            with sqlite3.connect(settings.database) as conn:
                assert conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 0
            again = deliver(client, "pull_request", body, delivery="d-1")  # GitHub redelivers
            assert again.status_code == 202, again.text
            duplicate = deliver(client, "pull_request", body, delivery="d-1")
            assert duplicate.status_code == 200 and duplicate.json()["status"] == "duplicate"
            assert _delivery_rows(settings.database) == 2
    finally:
        store.close()

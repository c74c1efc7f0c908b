"""`forge-app migrate-data`: an installation on SQLite (no FORGE_APP_SECRET_KEY, so its secrets are
under the generated `secret.key`) moves to a fresh PostgreSQL database. Every table arrives row for
row, counted; a second run copies nothing and says so; the new installation serves the old upload
token and scans, keeps the notification ledger (a rescan notifies nothing twice) and the webhook's
signing secret; a target holding other data is refused with nothing written.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from forge_app.config import Settings
from forge_app.security.crypto import decrypt, encrypt
from forge_app.security.local_key import ensure_secret_key
from forge_app.web.app import create_app
from storage import Storage, open_storage
from tests.conftest import ADMIN_TOKEN
from tests.notify.helpers import (
    SHA_MAIN,
    SHA_PR,
    Receiver,
    make_finding,
    run_jobs,
    scan_body,
    upload,
    verify_standard_webhook,
)
from tests.scale.databases import postgres_database

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def other_target(tmp_path: Path) -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _migrate(source: Path, target: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_APP_", "GITHUB_"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "forge_app.cli.main", "migrate-data", "--from",
                           f"sqlite:///{source}", "--to", target], env=env, capture_output=True, text=True,
                          timeout=120)


def _tables(storage: Storage) -> dict[str, list[dict[str, Any]]]:
    """Every data table's rows, in a stable order, for comparing two databases."""
    out = {}
    for table, columns in sorted(storage.database.table_columns().items()):
        if table in ("schema_migrations", "leases") or table.startswith("sqlite_"):
            continue
        cols = sorted(columns)
        rows = storage.database.query(f'SELECT {", ".join(cols)} FROM "{table}"')
        out[table] = sorted((dict(r) for r in rows), key=lambda r: repr([r[c] for c in cols]))
    return out


def _old_installation(tmp_path: Path, receiver: Receiver) -> tuple[Settings, str, str, dict[str, Any]]:
    """A SQLite installation as `make run` leaves it: generated key, a webhook, scans, a connection."""
    settings = ensure_secret_key(Settings(database=str(tmp_path / "old" / "forge-app.db"), admin_token=ADMIN_TOKEN,
                                          public_url="http://testserver", allow_private_targets=True))
    assert (tmp_path / "old" / "secret.key").is_file()
    storage = open_storage(settings.database)
    try:
        app = create_app(settings, storage, run_worker=False)
        with TestClient(app) as client:
            hook = client.post("/api/v1/integrations", headers=ADMIN, json={
                "type": "webhook", "name": "SIEM", "url": receiver.url, "secret": True})
            assert hook.status_code == 201, hook.text
            assert client.put("/api/v1/policies", headers=ADMIN,
                              json={"default": "comment", "rules": {"python.lang.*": "block"}}).status_code == 200
            token = storage.create_upload_token("github", "octo/demo")
            upload(client, token, scan_body([make_finding("a"), make_finding("b", line=20)], commit=SHA_MAIN,
                                            branch="main"))
            run_jobs(app)
            pr = upload(client, token, scan_body([make_finding("a"), make_finding("b", line=20),
                                                  make_finding("c", line=30)], commit=SHA_PR, branch="feature",
                                                 base_branch="main", pull_request=7))
            run_jobs(app)
            storage.create_connection(forge="gitlab", base_url="https://gitlab.example", scope="group",
                                      target="acme", token_enc=encrypt(settings.secret_key, "glpat-secret"),
                                      webhook_secret_enc=encrypt(settings.secret_key, "hook-secret"), info={})
            storage.upsert_github_installation(42, account="octo")
            storage.link_github_repositories(42, ["octo/demo"])
            storage.accept_delivery("github", "delivery-1", "push", kind="github_event", payload={"event": "push"})
            scan = client.get(f"/api/v1/scans/{pr['id']}", headers={"Authorization": f"Bearer {token}"}).json()
        return settings, token, hook.json()["secret"], scan
    finally:
        storage.close()


def test_an_installation_moves_to_postgresql_whole_and_keeps_working(tmp_path: Path, target: str,
                                                                     other_target: str) -> None:
    with Receiver() as receiver:
        settings, token, secret, pr_scan = _old_installation(tmp_path, receiver)
        notified = sorted(receiver.finding_ids())
        assert len(notified) == 3
        source_file = Path(settings.database)

        first = _migrate(source_file, target)
        assert first.returncode == 0, first.stderr + first.stdout
        assert "Copied" in first.stdout and "total" in first.stdout
        key_file = source_file.parent / "secret.key"
        assert f"FORGE_APP_SECRET_KEY=$(cat {key_file})" in first.stdout  # what to set on the new processes
        assert "MISSING" not in first.stdout

        source, moved = open_storage(settings.database), open_storage(target)
        try:
            before, after = _tables(source), _tables(moved)
            assert set(before) == set(after)
            for table in before:
                assert after[table] == before[table], table
            assert before["scans"] and before["identities"] and before["connections"]
            for table in ("scans", "identities", "jobs", "integrations", "upload_tokens"):
                if table in before:
                    assert f"\n{table} " in "\n" + first.stdout.replace("  ", " ")
        finally:
            source.close()

        again = _migrate(source_file, target)
        assert again.returncode == 0, again.stderr
        assert "Nothing new to copy" in again.stdout

        # The new installation, with the old key: same token, same scan, same ledger, same secrets.
        new_settings = dataclasses.replace(settings, database=target)
        try:
            [connection] = moved.connections()
            assert decrypt(new_settings.secret_key, connection.token_enc) == "glpat-secret"
            app = create_app(new_settings, moved, run_worker=False)
            with TestClient(app) as client:
                auth = {"Authorization": f"Bearer {token}"}
                assert client.get(f"/api/v1/scans/{pr_scan['id']}", headers=auth).json() == pr_scan
                receiver.requests.clear()
                again_pr = upload(client, token, scan_body(
                    [make_finding("a"), make_finding("b", line=20), make_finding("c", line=30),
                     make_finding("d", line=40)], commit=SHA_PR, branch="feature", base_branch="main",
                    pull_request=7))
                assert again_pr["id"] > pr_scan["id"]  # fresh ids come after the copied ones
                run_jobs(app)
                assert receiver.finding_ids() != [] and all(i not in notified for i in receiver.finding_ids())
                assert len(receiver.finding_ids()) == 1  # only the new finding d
                [post] = receiver.findings_posts()
                assert verify_standard_webhook(secret, post.headers, post.body)  # the old signing secret
                assert moved.create_upload_token("github", "octo/other")  # a new row in a copied table
        finally:
            moved.close()

    # A target that holds another installation's data is refused, untouched.
    unrelated = open_storage(other_target)
    try:
        unrelated.create_upload_token("github", "someone/else")
        refused = _migrate(source_file, other_target)
        assert refused.returncode == 2
        assert "refused" in refused.stderr and "nothing was written" in refused.stderr
        assert unrelated.database.one("SELECT COUNT(*) AS n FROM scans")["n"] == 0
    finally:
        unrelated.close()


def test_bad_arguments_are_one_clear_line(tmp_path: Path) -> None:
    missing = _migrate(tmp_path / "nope.db", "postgresql://forge@127.0.0.1:5432/x")
    assert missing.returncode == 2 and "no SQLite database at" in missing.stderr
    (tmp_path / "f.db").write_bytes(b"")
    wrong = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "migrate-data", "--from",
                            str(tmp_path / "f.db"), "--to", "mysql://x"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--to must be a PostgreSQL URL" in wrong.stderr

"""GitHub App state: installations, their cached tokens, pull request heads, setup codes.

Tokens arrive here already encrypted (forge_app/forges/github/tokens.py); storage
never sees a plaintext token or key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from storage.database import Database, utcnow
from storage.records import Repository


@dataclass(frozen=True, slots=True)
class GitHubInstallation:
    id: int
    account: str | None
    account_type: str | None
    suspended: bool
    deleted: bool

    @property
    def active(self) -> bool:
        return not (self.suspended or self.deleted)


@dataclass(frozen=True, slots=True)
class GitHubPullRequest:
    repository_id: int
    number: int
    head_sha: str | None
    head_ref: str | None
    base_ref: str | None
    state: str  # open | closed
    merged: bool


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class GitHubStore:
    database: Database

    # installations -------------------------------------------------------------------
    def upsert_github_installation(self, installation_id: int, *, account: str | None = None,
                                   account_type: str | None = None, repository_selection: str | None = None,
                                   suspended: bool | None = None, deleted: bool = False) -> None:
        now = utcnow()
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO github_installations (id, account, account_type, repository_selection, suspended, "
                "deleted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET account = COALESCE(excluded.account, account), "
                "account_type = COALESCE(excluded.account_type, account_type), "
                "repository_selection = COALESCE(excluded.repository_selection, repository_selection), "
                "suspended = COALESCE(?, suspended), deleted = excluded.deleted, updated_at = excluded.updated_at",
                [installation_id, account, account_type, repository_selection, int(bool(suspended)), int(deleted),
                 now, now, None if suspended is None else int(suspended)],
            )

    def github_installation(self, installation_id: int) -> GitHubInstallation | None:
        row = self.database.one("SELECT * FROM github_installations WHERE id = ?", [installation_id])
        if row is None:
            return None
        return GitHubInstallation(id=row["id"], account=row["account"], account_type=row["account_type"],
                                  suspended=bool(row["suspended"]), deleted=bool(row["deleted"]))

    def link_github_repositories(self, installation_id: int, full_names: Iterable[str]) -> list[Repository]:
        """Attach repositories (created when unknown) to the installation that can act on them."""
        linked = []
        for name in full_names:
            repo = self.ensure_repository("github", name)  # type: ignore[attr-defined]
            self.update_repository(repo.id, installation_id=installation_id)  # type: ignore[attr-defined]
            linked.append(repo)
        return linked

    def unlink_github_repositories(self, installation_id: int, full_names: Iterable[str] | None = None) -> int:
        """Detach some (or, with None, all) repositories from an installation."""
        with self.database.transaction() as db:
            if full_names is None:
                cur = db.execute("UPDATE repositories SET installation_id = NULL WHERE forge = 'github' "
                                 "AND installation_id = ?", [installation_id])
                return cur.rowcount
            count = 0
            for name in full_names:
                cur = db.execute("UPDATE repositories SET installation_id = NULL WHERE forge = 'github' "
                                 "AND installation_id = ? AND full_name = ?", [installation_id, name])
                count += cur.rowcount
            return count

    def github_installation_repository_ids(self, installation_id: int) -> list[int]:
        return [r["id"] for r in self.database.query(
            "SELECT id FROM repositories WHERE forge = 'github' AND installation_id = ? ORDER BY id",
            [installation_id])]

    # installation tokens -------------------------------------------------------------
    def github_token(self, installation_id: int) -> tuple[str, float] | None:
        """(encrypted token, expiry as epoch seconds) cached for one installation."""
        row = self.database.one("SELECT token_enc, expires_at FROM github_tokens WHERE installation_id = ?",
                                [installation_id])
        return (row["token_enc"], float(row["expires_at"])) if row else None

    def save_github_token(self, installation_id: int, token_enc: str, expires_at: float) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO github_tokens (installation_id, token_enc, expires_at, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(installation_id) DO UPDATE SET token_enc = excluded.token_enc, "
                "expires_at = excluded.expires_at, created_at = excluded.created_at",
                [installation_id, token_enc, expires_at, utcnow()],
            )

    def drop_github_token(self, installation_id: int, token_enc: str | None = None) -> None:
        """Forget an installation's token (only that exact one when given, so a fresh
        token saved by another worker in the meantime survives)."""
        with self.database.transaction() as db:
            if token_enc is None:
                db.execute("DELETE FROM github_tokens WHERE installation_id = ?", [installation_id])
            else:
                db.execute("DELETE FROM github_tokens WHERE installation_id = ? AND token_enc = ?",
                           [installation_id, token_enc])

    # pull requests -------------------------------------------------------------------
    def record_github_pull_request(self, repository_id: int, number: int, *, head_sha: str | None,
                                   head_ref: str | None, base_ref: str | None, state: str,
                                   merged: bool = False) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO github_pull_requests (repository_id, number, head_sha, head_ref, base_ref, state, merged, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(repository_id, number) DO UPDATE SET "
                "head_sha = COALESCE(excluded.head_sha, head_sha), head_ref = COALESCE(excluded.head_ref, head_ref), "
                "base_ref = COALESCE(excluded.base_ref, base_ref), state = excluded.state, merged = excluded.merged, "
                "updated_at = excluded.updated_at",
                [repository_id, number, head_sha, head_ref, base_ref, state, int(merged), utcnow()],
            )

    def github_pull_request(self, repository_id: int, number: int) -> GitHubPullRequest | None:
        row = self.database.one("SELECT * FROM github_pull_requests WHERE repository_id = ? AND number = ?",
                                [repository_id, number])
        if row is None:
            return None
        return GitHubPullRequest(repository_id=row["repository_id"], number=row["number"], head_sha=row["head_sha"],
                                 head_ref=row["head_ref"], base_ref=row["base_ref"], state=row["state"],
                                 merged=bool(row["merged"]))

    def latest_pull_request_scan_of_commit(self, repository_id: int, commit: str) -> int | None:
        """The newest PR scan of a head SHA (what a re-run of the check publishes again)."""
        row = self.database.one(
            "SELECT id FROM scans WHERE repository_id = ? AND commit_sha = ? AND pull_request IS NOT NULL "
            "AND status = 'done' ORDER BY id DESC LIMIT 1", [repository_id, commit.lower()])
        return int(row["id"]) if row else None

    def repository_has_scans(self, repository_id: int) -> bool:
        row = self.database.one("SELECT 1 AS x FROM scans WHERE repository_id = ? LIMIT 1", [repository_id])
        return row is not None

    # one-time codes of the app registration flow ------------------------------------
    def create_github_setup_code(self, kind: str, *, org: str | None = None, ttl: float = 3600.0) -> str:
        """A random code (only its hash is kept) valid for `ttl` seconds."""
        code = secrets.token_urlsafe(24)
        with self.database.transaction() as db:
            db.execute("DELETE FROM github_setup_codes WHERE expires_at < ?", [time.time()])
            db.execute(
                "INSERT INTO github_setup_codes (code_hash, kind, org, expires_at, used, created_at) "
                "VALUES (?, ?, ?, ?, 0, ?)", [_code_hash(code), kind, org, time.time() + ttl, utcnow()])
        return code

    def check_github_setup_code(self, kind: str, code: str, *, consume: bool) -> dict | None:
        """`{"org": ...}` when the code is known, of this kind, unexpired and (if consuming) unused."""
        with self.database.transaction() as db:
            row = self.database.one("SELECT * FROM github_setup_codes WHERE code_hash = ? AND kind = ?",
                                    [_code_hash(code), kind])
            if row is None or row["expires_at"] < time.time() or row["used"]:
                return None
            if consume:
                db.execute("UPDATE github_setup_codes SET used = 1 WHERE code_hash = ?", [_code_hash(code)])
        return {"org": row["org"]}

"""Repositories and upload tokens. Tokens are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import secrets

from storage.database import Database, utcnow
from storage.records import Repository

TOKEN_PREFIX = "fa_upload_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _repository(row: dict) -> Repository:
    return Repository(
        id=row["id"], forge=row["forge"], full_name=row["full_name"],
        default_branch=row.get("default_branch"), installation_id=row.get("installation_id"),
        connection_id=row.get("connection_id"),
    )


class TokenStore:
    database: Database

    def ensure_repository(self, forge: str, full_name: str) -> Repository:
        with self.database.transaction() as db:
            row = self.database.one(
                "SELECT * FROM repositories WHERE forge = ? AND full_name = ?", [forge, full_name]
            )
            if row is None:
                db.execute(
                    "INSERT INTO repositories (forge, full_name, created_at) VALUES (?, ?, ?)",
                    [forge, full_name, utcnow()],
                )
                row = self.database.one(
                    "SELECT * FROM repositories WHERE forge = ? AND full_name = ?", [forge, full_name]
                )
        assert row is not None
        return _repository(row)

    def find_repository(self, forge: str, full_name: str) -> Repository | None:
        row = self.database.one(
            "SELECT * FROM repositories WHERE forge = ? AND full_name = ?", [forge, full_name]
        )
        return _repository(row) if row else None

    def repository(self, repository_id: int) -> Repository | None:
        row = self.database.one("SELECT * FROM repositories WHERE id = ?", [repository_id])
        return _repository(row) if row else None

    def update_repository(self, repository_id: int, **fields: object) -> None:
        allowed = {"default_branch", "installation_id", "connection_id"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update repository fields {sorted(bad)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.database.transaction() as db:
            db.execute(f"UPDATE repositories SET {sets} WHERE id = ?", [*fields.values(), repository_id])

    def create_upload_token(self, forge: str, full_name: str) -> str:
        """Mint a token bound to one repository; only its hash is kept."""
        repo = self.ensure_repository(forge, full_name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO upload_tokens (repository_id, token_hash, hint, created_at) VALUES (?, ?, ?, ?)",
                [repo.id, hash_token(token), token[-4:], utcnow()],
            )
        return token

    def repository_for_token(self, token: str) -> Repository | None:
        row = self.database.one(
            "SELECT r.* FROM upload_tokens t JOIN repositories r ON r.id = t.repository_id "
            "WHERE t.token_hash = ?",
            [hash_token(token)],
        )
        return _repository(row) if row else None

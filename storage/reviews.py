"""What forge-app has posted on pull/merge requests, per finding identity."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from storage.database import Database, utcnow


@dataclass(frozen=True, slots=True)
class ReviewComment:
    id: int
    identity_id: int
    fingerprint: str
    comment_id: str
    thread_id: str | None
    scan_id: int
    path: str
    line: int
    resolved: bool


def _comment(row: dict[str, Any]) -> ReviewComment:
    return ReviewComment(id=row["id"], identity_id=row["identity_id"], fingerprint=row["fingerprint"],
                         comment_id=row["comment_id"], thread_id=row["thread_id"], scan_id=row["scan_id"],
                         path=row["path"], line=row["line"], resolved=bool(row["resolved"]))


class ReviewStore:
    database: Database

    def review_comments(self, repository_id: int, pull_request: int) -> list[ReviewComment]:
        return [_comment(r) for r in self.database.query(
            "SELECT * FROM review_comments WHERE repository_id = ? AND pull_request = ? ORDER BY id",
            [repository_id, pull_request])]

    def record_review_comment(
        self, repository_id: int, pull_request: int, identity_id: int, *, fingerprint: str, comment_id: str,
        thread_id: str | None, scan_id: int, path: str, line: int,
    ) -> bool:
        """False when this identity already has a comment on this PR (a retry after a crash)."""
        try:
            with self.database.transaction() as db:
                db.execute(
                    "INSERT INTO review_comments (repository_id, pull_request, identity_id, fingerprint, comment_id, "
                    "thread_id, scan_id, path, line, resolved, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    [repository_id, pull_request, identity_id, fingerprint, comment_id, thread_id, scan_id, path,
                     line, utcnow()],
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def mark_review_comment_resolved(self, comment_row_id: int, scan_id: int) -> None:
        with self.database.transaction() as db:
            db.execute(
                "UPDATE review_comments SET resolved = 1, resolved_by_scan_id = ?, resolved_at = ? WHERE id = ?",
                [scan_id, utcnow(), comment_row_id],
            )

    def mark_review_comment_reopened(self, comment_row_id: int) -> None:
        """The finding came back (a reverted fix): its thread is open again."""
        with self.database.transaction() as db:
            db.execute(
                "UPDATE review_comments SET resolved = 0, resolved_by_scan_id = NULL, resolved_at = NULL "
                "WHERE id = ?",
                [comment_row_id],
            )

    def forge_object(self, repository_id: int, scope: str, name: str) -> Any | None:
        """Something posted once and edited later (a summary comment id, a check run id)."""
        row = self.database.one(
            "SELECT value FROM forge_objects WHERE repository_id = ? AND scope = ? AND name = ?",
            [repository_id, scope, name])
        return json.loads(row["value"]) if row else None

    def remember_forge_object(self, repository_id: int, scope: str, name: str, value: Any) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO forge_objects (repository_id, scope, name, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(repository_id, scope, name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                [repository_id, scope, name, json.dumps(value), utcnow()],
            )

"""What was posted on each PR/MR (comments per finding identity, summary notes, check runs),
so a rescan or a redelivery never posts twice and fixed findings' threads can be resolved."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["review_comments"].create(
        {"id": int, "repository_id": int, "pull_request": int, "identity_id": int, "fingerprint": str,
         "comment_id": str, "thread_id": str, "scan_id": int, "path": str, "line": int,
         "resolved": int, "resolved_by_scan_id": int, "created_at": str, "resolved_at": str},
        pk="id", foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["review_comments"].create_index(["repository_id", "pull_request", "identity_id"], unique=True)
    db["forge_objects"].create(
        {"repository_id": int, "scope": str, "name": str, "value": str, "updated_at": str},
        pk=("repository_id", "scope", "name"),
    )

"""`semgrep ci` backend: rule files managed through the admin API, and one row per `semgrep ci`
run (keyed by the CLI's own `unique_id`, so its retried POST finds the same run)."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["rule_files"].create({"name": str, "content": str, "updated_at": str}, pk="name")
    db["semgrep_ci_runs"].create(
        {"id": int, "repository_id": int, "unique_id": str, "project_metadata": str, "is_full_scan": int,
         "scan_id": int, "cli_blocking": int, "state": str, "exit_code": int, "detail": str,
         "created_at": str, "updated_at": str},
        pk="id", foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["semgrep_ci_runs"].create_index(["repository_id", "unique_id"], unique=True)

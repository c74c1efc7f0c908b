"""Repositories, upload tokens, scans, findings, identities, deliveries, jobs, policies, settings."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["repositories"].create(
        {"id": int, "forge": str, "full_name": str, "default_branch": str,
         "installation_id": int, "connection_id": int, "created_at": str},
        pk="id", not_null={"forge", "full_name"},
    )
    db["repositories"].create_index(["forge", "full_name"], unique=True)

    db["upload_tokens"].create(
        {"id": int, "repository_id": int, "token_hash": str, "hint": str,
         "created_at": str, "last_used_at": str},
        pk="id", foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["upload_tokens"].create_index(["token_hash"], unique=True)

    db["scans"].create(
        {"id": int, "repository_id": int, "commit_sha": str, "branch": str, "base_branch": str,
         "pull_request": int, "status": str, "tools": str, "is_baseline": int, "base_scan_id": int,
         "count_new": int, "count_fixed": int, "count_unchanged": int, "blocking": int,
         "errors": str, "meta": str, "error_detail": str, "created_at": str, "completed_at": str},
        pk="id", foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["scans"].create_index(["repository_id", "branch", "is_baseline", "id"])
    db["scans"].create_index(["repository_id", "pull_request", "id"])

    db["identities"].create(
        {"id": int, "repository_id": int, "fingerprint": str, "rule_id": str, "path": str,
         "code_hash": str, "fp": str, "line": int, "first_seen_scan_id": int,
         "created_at": str},
        pk="id", foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["identities"].create_index(["repository_id", "fingerprint"])
    db["identities"].create_index(["repository_id", "rule_id", "path", "code_hash"])

    db["findings"].create(
        {"id": int, "scan_id": int, "identity_id": int, "status": str, "mode": str,
         "rule_id": str, "path": str, "start_line": int, "end_line": int, "base_line": int,
         "fingerprint": str, "fp": str, "first_seen": int, "data": str},
        pk="id",
        foreign_keys=[("scan_id", "scans", "id"), ("identity_id", "identities", "id")],
    )
    db["findings"].create_index(["scan_id", "status"])
    db["findings"].create_index(["identity_id"])

    db["deliveries"].create(
        {"source": str, "delivery_id": str, "event": str, "received_at": str},
        pk=("source", "delivery_id"),
    )

    db["jobs"].create(
        {"id": int, "kind": str, "payload": str, "idempotency_key": str, "group_key": str,
         "status": str, "attempts": int, "max_attempts": int, "run_at": float,
         "locked_by": str, "locked_until": float, "last_error": str,
         "created_at": str, "updated_at": str},
        pk="id",
    )
    db["jobs"].create_index(["idempotency_key"], unique=True)
    db["jobs"].create_index(["status", "run_at"])
    db["jobs"].create_index(["group_key", "status"])

    db["policies"].create({"pattern": str, "mode": str}, pk="pattern")
    db["settings"].create({"key": str, "value": str}, pk="key")

    db["integrations"].create(
        {"id": int, "type": str, "name": str, "config": str, "secret": str,
         "filters": str, "enabled": int, "created_at": str, "updated_at": str},
        pk="id",
    )
    db["notifications_sent"].create(
        {"integration_id": int, "identity_id": int, "scan_id": int, "sent_at": str},
        pk=("integration_id", "identity_id"),
    )

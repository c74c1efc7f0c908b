"""GitHub App state: installations, cached installation tokens (encrypted), pull request
heads and states from webhooks, and one-time codes of the app registration (manifest) flow."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["github_installations"].create(
        {"id": int, "account": str, "account_type": str, "repository_selection": str, "suspended": int,
         "deleted": int, "created_at": str, "updated_at": str},
        pk="id",
    )
    # Keyed by installation: a token is never used for another installation's repositories.
    db["github_tokens"].create(
        {"installation_id": int, "token_enc": str, "expires_at": float, "created_at": str},
        pk="installation_id",
    )
    db["github_pull_requests"].create(
        {"repository_id": int, "number": int, "head_sha": str, "head_ref": str, "base_ref": str,
         "state": str, "merged": int, "updated_at": str},
        pk=("repository_id", "number"), foreign_keys=[("repository_id", "repositories", "id")],
    )
    db["github_setup_codes"].create(
        {"code_hash": str, "kind": str, "org": str, "expires_at": float, "used": int, "created_at": str},
        pk="code_hash",
    )
    db["scans"].create_index(["repository_id", "commit_sha"], if_not_exists=True)

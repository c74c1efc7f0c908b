"""GitLab and Bitbucket connections: where the forge is, what it covers, an encrypted token."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["connections"].create(
        {"id": int, "forge": str, "base_url": str, "scope": str, "target": str, "token_enc": str,
         "webhook_secret_enc": str, "info": str, "created_at": str},
        pk="id",
    )
    db["connections"].create_index(["forge", "target"])

"""Uploads accepted before they can be triaged: a scan in status `processing` keeps its
findings here until the `complete_scan` job has fetched the source files it needs from
the forge, recorded the triaged scan and deleted the row (in one transaction)."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["pending_uploads"].create(
        {"scan_id": int, "findings": str, "created_at": str},
        pk="scan_id", foreign_keys=[("scan_id", "scans", "id")],
    )

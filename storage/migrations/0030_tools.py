"""Baselines per tool: each finding remembers the tool that reported it (SARIF driver name,
`semgrep` for Semgrep JSON), and each scan its counts per tool, so several scanners can upload
to one branch without one's findings counting as fixed in the other's scan."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["findings"].add_column("tool", str)
    db.execute("UPDATE findings SET tool = COALESCE(json_extract(data, '$.tool'), 'unknown')")
    db["scans"].add_column("tool_counts", str)
    db["scans"].add_column("notes", str)

"""Commits the server already knows from its scans (read-only).

Forges sometimes name a commit by an abbreviated hash (Bitbucket Cloud's webhook payloads
carry 12 characters). The CI uploads full 40-character SHAs, so a scan of the same
repository usually tells the full SHA without asking the forge.
"""

from __future__ import annotations

import re

from storage.database import Database

_HEX = re.compile(r"^[0-9a-f]{4,40}$")


class CommitStore:
    database: Database

    def scanned_commit_with_prefix(self, repository_id: int, prefix: str) -> str | None:
        """The full SHA of the one scanned commit of this repository starting with `prefix`;
        None when no scan, or more than one distinct commit, matches (or the prefix is not hex)."""
        prefix = prefix.strip().lower()
        if not _HEX.match(prefix):
            return None
        rows = self.database.query(
            "SELECT DISTINCT lower(commit_sha) AS sha FROM scans WHERE repository_id = ? "
            "AND length(commit_sha) = 40 AND lower(substr(commit_sha, 1, ?)) = ? LIMIT 2",
            [repository_id, len(prefix), prefix])
        return rows[0]["sha"] if len(rows) == 1 else None

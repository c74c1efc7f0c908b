"""GitLab/Bitbucket connections. Secrets arrive here already encrypted; storage never sees plaintext."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import Database, utcnow


@dataclass(frozen=True, slots=True)
class Connection:
    id: int
    forge: str
    base_url: str
    scope: str
    target: str
    token_enc: str
    webhook_secret_enc: str
    info: dict[str, Any]
    created_at: str

    def covers(self, full_name: str) -> bool:
        """Whether this connection serves a repository/project path."""
        if self.scope in ("project", "repository"):
            return full_name.lower() == self.target.lower()
        return full_name.lower().startswith(self.target.lower().rstrip("/") + "/")


def _connection(row: dict[str, Any]) -> Connection:
    return Connection(id=row["id"], forge=row["forge"], base_url=row["base_url"], scope=row["scope"],
                      target=row["target"], token_enc=row["token_enc"], webhook_secret_enc=row["webhook_secret_enc"],
                      info=json.loads(row["info"] or "{}"), created_at=row["created_at"])


class ConnectionStore:
    database: Database

    def create_connection(self, *, forge: str, base_url: str, scope: str, target: str, token_enc: str,
                          webhook_secret_enc: str, info: dict[str, Any]) -> Connection:
        with self.database.transaction() as db:
            cur = db.execute(
                "INSERT INTO connections (forge, base_url, scope, target, token_enc, webhook_secret_enc, info, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [forge, base_url, scope, target, token_enc, webhook_secret_enc, json.dumps(info), utcnow()],
            )
            connection_id = int(cur.lastrowid)
        found = self.connection(connection_id)
        assert found is not None
        return found

    def connection(self, connection_id: int) -> Connection | None:
        row = self.database.one("SELECT * FROM connections WHERE id = ?", [connection_id])
        return _connection(row) if row else None

    def connections(self, forge: str | None = None) -> list[Connection]:
        if forge:
            rows = self.database.query("SELECT * FROM connections WHERE forge = ? ORDER BY id", [forge])
        else:
            rows = self.database.query("SELECT * FROM connections ORDER BY id")
        return [_connection(r) for r in rows]

    def delete_connection(self, connection_id: int) -> bool:
        with self.database.transaction() as db:
            cur = db.execute("DELETE FROM connections WHERE id = ?", [connection_id])
            db.execute("UPDATE repositories SET connection_id = NULL WHERE connection_id = ?", [connection_id])
            return cur.rowcount > 0

    def connection_for(self, forge: str, full_name: str) -> Connection | None:
        """The most specific connection covering a repository (a repository/project connection
        wins over a workspace/group one; the longest group path wins among groups)."""
        matches = [c for c in self.connections(forge) if c.covers(full_name)]
        if not matches:
            return None
        return max(matches, key=lambda c: (c.scope in ("project", "repository"), len(c.target), -c.id))

"""Small key/value settings (e.g. GitHub App credentials from the manifest flow) and policies."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database


class SettingsStore:
    database: Database

    def get_setting(self, key: str) -> Any | None:
        row = self.database.one("SELECT value FROM settings WHERE key = ?", [key])
        return json.loads(row["value"]) if row else None

    def put_setting(self, key: str, value: Any) -> None:
        with self.database.transaction() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, json.dumps(value)],
            )

    def get_policies(self) -> dict[str, Any]:
        """`{"default": mode, "rules": {pattern: mode}}`, default `comment`."""
        default = self.get_setting("policy_default") or "comment"
        rows = self.database.query("SELECT pattern, mode FROM policies ORDER BY pattern")
        rules = {r["pattern"]: r["mode"] for r in rows}
        return {"default": default, "rules": rules}

    def put_policies(self, default: str, rules: dict[str, str]) -> None:
        """Replace the whole rule board at once (PUT semantics)."""
        with self.database.transaction() as db:
            db.execute("DELETE FROM policies")
            for pattern, mode in rules.items():
                db.execute("INSERT INTO policies (pattern, mode) VALUES (?, ?)", [pattern, mode])
            self.put_setting("policy_default", default)

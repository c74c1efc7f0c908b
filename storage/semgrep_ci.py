"""Rule files from the admin API, and the runs of `semgrep ci` against this server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import Database, utcnow


@dataclass(frozen=True, slots=True)
class RuleFileRecord:
    name: str
    content: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class CiRun:
    """One `semgrep ci` invocation: started (config served), then results (a forge-app scan),
    then `complete` or `error`."""

    id: int
    repository_id: int
    unique_id: str
    project_metadata: dict[str, Any]
    is_full_scan: bool
    scan_id: int | None
    cli_blocking: bool
    state: str  # started | results | complete | error
    exit_code: int | None
    detail: str | None


def _run(row: dict[str, Any]) -> CiRun:
    return CiRun(id=row["id"], repository_id=row["repository_id"], unique_id=row["unique_id"],
                 project_metadata=json.loads(row["project_metadata"] or "{}"),
                 is_full_scan=bool(row["is_full_scan"]), scan_id=row["scan_id"],
                 cli_blocking=bool(row["cli_blocking"]), state=row["state"], exit_code=row["exit_code"],
                 detail=row["detail"])


class SemgrepCiStore:
    database: Database

    # rule files ---------------------------------------------------------------------------
    def rule_file_records(self) -> list[RuleFileRecord]:
        return [RuleFileRecord(r["name"], r["content"], r["updated_at"])
                for r in self.database.query("SELECT * FROM rule_files ORDER BY name")]

    def put_rule_file(self, name: str, content: str) -> bool:
        """Create or replace; True when it was created."""
        with self.database.transaction() as db:
            existed = self.database.one("SELECT name FROM rule_files WHERE name = ?", [name]) is not None
            db.execute("INSERT INTO rule_files (name, content, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
                       [name, content, utcnow()])
        return not existed

    def delete_rule_file(self, name: str) -> bool:
        with self.database.transaction() as db:
            cur = db.execute("DELETE FROM rule_files WHERE name = ?", [name])
            return cur.rowcount > 0

    # semgrep ci runs ----------------------------------------------------------------------
    def start_ci_run(self, repository_id: int, unique_id: str, project_metadata: dict[str, Any],
                     is_full_scan: bool) -> CiRun:
        """The run of this `unique_id`, created on first sight: the CLI re-POSTs with the same id."""
        now = utcnow()
        with self.database.transaction() as db:
            row = self.database.one("SELECT * FROM semgrep_ci_runs WHERE repository_id = ? AND unique_id = ?",
                                    [repository_id, unique_id])
            if row is None:
                db.execute(
                    "INSERT INTO semgrep_ci_runs (repository_id, unique_id, project_metadata, is_full_scan, "
                    "cli_blocking, state, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 'started', ?, ?)",
                    [repository_id, unique_id, json.dumps(project_metadata), int(is_full_scan), now, now])
                row = self.database.one("SELECT * FROM semgrep_ci_runs WHERE repository_id = ? AND unique_id = ?",
                                        [repository_id, unique_id])
        assert row is not None
        return _run(row)

    def ci_run(self, run_id: int) -> CiRun | None:
        row = self.database.one("SELECT * FROM semgrep_ci_runs WHERE id = ?", [run_id])
        return _run(row) if row else None

    def ci_run_by_unique_id(self, repository_id: int, unique_id: str) -> CiRun | None:
        row = self.database.one("SELECT * FROM semgrep_ci_runs WHERE repository_id = ? AND unique_id = ?",
                                [repository_id, unique_id])
        return _run(row) if row else None

    def attach_ci_results(self, run_id: int, scan_id: int, cli_blocking: bool) -> None:
        with self.database.transaction() as db:
            db.execute("UPDATE semgrep_ci_runs SET scan_id = ?, cli_blocking = ?, state = 'results', updated_at = ? "
                       "WHERE id = ?", [scan_id, int(cli_blocking), utcnow(), run_id])

    def finish_ci_run(self, run_id: int, state: str, exit_code: int | None, detail: str | None = None) -> None:
        with self.database.transaction() as db:
            db.execute("UPDATE semgrep_ci_runs SET state = ?, exit_code = ?, detail = ?, updated_at = ? WHERE id = ?",
                       [state, exit_code, detail, utcnow(), run_id])

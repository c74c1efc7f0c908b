"""Read-only queries the web console needs (projects, findings pages, rule board, status).

Kept apart from the write paths of the other stores: the console only reads here, and
every page query is bounded (LIMIT/OFFSET, aggregate counts) so a repository with
10,000 findings renders as fast as one with ten.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from storage.database import Database

SEVERITY = importlib.import_module("storage.migrations.0050_console_findings_index").SEVERITY

PRESENT = ("new", "unchanged")
"""Statuses of the findings present in a scan: its open findings when it is a branch's latest."""


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Filters of a findings page; empty strings mean no filter."""

    rule: str = ""
    path: str = ""
    severity: str = ""


def _filter_sql(f: FindingFilter) -> tuple[str, list[Any]]:
    sql, params = "", []
    if f.rule:
        sql += " AND f.rule_id = ?"
        params.append(f.rule)
    if f.path:
        sql += " AND instr(f.path, ?) > 0"
        params.append(f.path)
    if f.severity:
        # not json_extract: it parses each whole document, and it is not what the index holds
        sql += f" AND {SEVERITY_SQL} = ?"
        params.append(f.severity)
    return sql, params


SEVERITY_SQL = SEVERITY
"""The expression of the console's index (migration 0050), so filtering reads only that index:
a finding's top-level severity, read from its stored JSON without parsing it. Sound because the
stored document is compact JSON written from `Finding.to_dict()`, whose keys before `severity`
(rule_id, path, lines, columns, message) are never objects, and because inside a JSON string a
quote is always escaped: the first unescaped `"severity":"` is the top-level key (a `severity`
inside `metadata` comes later). tests/console/test_console_storage.py checks it against json_extract."""
_ORDER_KEY = "CASE f.mode WHEN 'block' THEN 0 WHEN 'comment' THEN 1 ELSE 2 END"
_FINDING_COLUMNS = (
    "f.id, f.status, f.mode, f.rule_id, f.path, f.start_line, f.end_line, f.base_line, "
    "json_extract(f.data, '$.severity') AS severity, substr(json_extract(f.data, '$.message'), 1, 400) AS message, "
    "i.created_at AS first_seen_at, i.first_seen_scan_id"
)


class ConsoleQueries:
    """What the console shows, read straight from the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # --- projects ---------------------------------------------------------------

    def repositories_with_scans(self) -> list[dict[str, Any]]:
        """Each repository that has scans: forge, name, last scan, open findings (present in
        its latest finished branch scan, the default branch's when known)."""
        rows = self.database.query(
            "SELECT r.id, r.forge, r.full_name, r.default_branch, COUNT(s.id) AS scans, MAX(s.id) AS last_scan_id, "
            "MAX(s.created_at) AS last_scan_at FROM repositories r JOIN scans s ON s.repository_id = r.id "
            "GROUP BY r.id ORDER BY last_scan_at DESC, r.full_name"
        )
        for row in rows:
            head = self.head_scan(row["id"], row["default_branch"])
            row["head_scan"] = head
            row["open_findings"] = (head["count_new"] + head["count_unchanged"]) if head else None
        return rows

    def head_scan(self, repository_id: int, default_branch: str | None) -> dict[str, Any] | None:
        """The scan whose present findings are the repository's open findings."""
        base = ("SELECT id, branch, commit_sha, count_new, count_unchanged, count_fixed, created_at FROM scans "
                "WHERE repository_id = ? AND is_baseline = 1 AND status = 'done'")
        if default_branch:
            row = self.database.one(base + " AND branch = ? ORDER BY id DESC LIMIT 1", [repository_id, default_branch])
            if row:
                return row
        return self.database.one(base + " ORDER BY id DESC LIMIT 1", [repository_id])

    def repository_scans(self, repository_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows = self.database.query(
            "SELECT id, commit_sha, branch, base_branch, pull_request, status, is_baseline, count_new, count_fixed, "
            "count_unchanged, blocking, created_at FROM scans WHERE repository_id = ? "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            [repository_id, limit, offset])
        total = self.database.one("SELECT COUNT(*) AS n FROM scans WHERE repository_id = ?", [repository_id])
        return rows, int(total["n"]) if total else 0

    def open_counts(self, repository_id: int, branch: str, limit: int = 60) -> list[dict[str, Any]]:
        """(scan id, time, findings present) for the latest branch scans, oldest first: the chart."""
        rows = self.database.query(
            "SELECT id, created_at, count_new + count_unchanged AS open FROM scans WHERE repository_id = ? "
            "AND branch = ? AND is_baseline = 1 AND status = 'done' ORDER BY id DESC LIMIT ?",
            [repository_id, branch, limit])
        return rows[::-1]

    # --- findings of one scan ---------------------------------------------------

    def findings_page(self, scan_id: int, statuses: tuple[str, ...], flt: FindingFilter, limit: int,
                      offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of a scan's findings in these statuses, filtered, with the filtered total.

        The page's ids are chosen on narrow columns first; only those rows' JSON is read."""
        where, params = _filter_sql(flt)
        marks = ", ".join("?" for _ in statuses)
        head = f"FROM findings f WHERE f.scan_id = ? AND f.status IN ({marks}){where}"
        args = [scan_id, *statuses, *params]
        total = self.database.one(f"SELECT COUNT(*) AS n {head}", args)
        if not limit:
            return [], int(total["n"]) if total else 0
        rows = self.database.query(
            f"WITH page AS MATERIALIZED (SELECT f.id, {_ORDER_KEY} AS k {head} ORDER BY k, f.path, f.start_line, f.id "
            f"LIMIT ? OFFSET ?) SELECT {_FINDING_COLUMNS} FROM page JOIN findings f ON f.id = page.id "
            "LEFT JOIN identities i ON i.id = f.identity_id ORDER BY page.k, f.path, f.start_line, f.id",
            [*args, limit, offset])
        return rows, int(total["n"]) if total else 0

    def finding_rules(self, scan_id: int, statuses: tuple[str, ...]) -> list[str]:
        """The rules present, for the filter menu."""
        marks = ", ".join("?" for _ in statuses)
        rows = self.database.query(
            f"SELECT DISTINCT rule_id FROM findings WHERE scan_id = ? AND status IN ({marks}) ORDER BY rule_id",
            [scan_id, *statuses])
        return [r["rule_id"] for r in rows]

    # --- rule board -------------------------------------------------------------

    def rules_seen(self) -> dict[str, int]:
        """Every rule id seen in any scan, with the number of repositories it was seen in."""
        rows = self.database.query(
            "SELECT rule_id, COUNT(DISTINCT repository_id) AS repos FROM identities GROUP BY rule_id ORDER BY rule_id")
        return {r["rule_id"]: int(r["repos"]) for r in rows}

    # --- settings ---------------------------------------------------------------

    def last_deliveries(self) -> dict[int, dict[str, Any]]:
        """Per integration, its latest delivery (any kind), for the list's status column."""
        rows = self.database.query(
            "SELECT d.integration_id, d.kind, d.status, d.status_code, d.error, d.created_at "
            "FROM notification_deliveries d JOIN (SELECT integration_id, MAX(id) AS id FROM notification_deliveries "
            "GROUP BY integration_id) m ON m.id = d.id")
        return {r["integration_id"]: r for r in rows}

    def github_installations(self) -> list[dict[str, Any]]:
        """Installations GitHub told us about (not deleted), each with its linked repositories."""
        rows = self.database.query(
            "SELECT id, account, account_type, repository_selection, suspended FROM github_installations "
            "WHERE COALESCE(deleted, 0) = 0 ORDER BY account, id")
        for row in rows:
            repos = self.database.query(
                "SELECT full_name FROM repositories WHERE installation_id = ? ORDER BY full_name LIMIT 200",
                [row["id"]])
            row["repositories"] = [r["full_name"] for r in repos]
        return rows

"""An index for the console's findings pages: a scan's present findings by mode, path, line,
rule and severity, so counting, sorting, filtering and paging 10,000 findings reads only this
index, never the findings' JSON (bench/console.py). Severity is the expression
`storage.console.SEVERITY_SQL` reads, over the stored JSON without parsing it."""

from __future__ import annotations

import sqlite_utils

SEVERITY = ("substr(data, instr(data, '\"severity\":\"') + 12, "
            "instr(substr(data, instr(data, '\"severity\":\"') + 12), '\"') - 1)")


def apply(db: sqlite_utils.Database) -> None:
    db.execute(f"CREATE INDEX IF NOT EXISTS findings_console ON findings "
               f"(scan_id, status, mode, path, start_line, rule_id, {SEVERITY})")

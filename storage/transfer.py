"""Copying a whole installation from one database to another (`forge-app migrate-data`).

Both sides are migrated to the current schema first, so they have the same tables; every row of
every table is then copied as it is (ids, timestamps, encrypted secrets), parents before
children, in batches, with `ON CONFLICT DO NOTHING`: a second run copies only rows added since
and says so. Identity sequences are moved past the copied ids afterwards.

The target must be empty, or hold an earlier copy of the same source: the source is named by an
id kept in its settings (`installation_id`) and the target remembers which one it was filled
from (`migrated_from`), written before the first row, so an interrupted copy can be finished.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from storage.database import Database

BATCH = 1000
SOURCE_ID_KEY = "installation_id"
MARKER_KEY = "migrated_from"
# Bookkeeping of one database, not data of the installation.
SKIPPED = frozenset({"schema_migrations", "leases"})


class TransferRefused(Exception):
    """The target holds data that is not an earlier copy of this source (nothing was written)."""


@dataclass
class TableCount:
    table: str
    source: int
    target_before: int
    target_after: int

    @property
    def copied(self) -> int:
        return self.target_after - self.target_before


@dataclass
class TransferReport:
    source_id: str
    resumed: bool  # the target already held an earlier copy of this source
    tables: list[TableCount] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    @property
    def mismatched(self) -> list[TableCount]:
        """Tables whose target has fewer rows than the source (the copy is incomplete)."""
        return [t for t in self.tables if t.target_after < t.source]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _count(database: Database, table: str) -> int:
    row = database.one(f"SELECT COUNT(*) AS n FROM {_q(table)}")
    return int(row["n"]) if row else 0


def _setting(database: Database, key: str) -> Any:
    row = database.one("SELECT value FROM settings WHERE key = ?", [key])
    return json.loads(row["value"]) if row else None


def _put_setting(database: Database, key: str, value: Any) -> None:
    with database.transaction() as conn:
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, json.dumps(value)])


def source_id(source: Database) -> str:
    """The source installation's id (created once, in its settings)."""
    known = _setting(source, SOURCE_ID_KEY)
    if isinstance(known, str) and known:
        return known
    fresh = uuid.uuid4().hex
    with source.transaction() as conn:
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                     [SOURCE_ID_KEY, json.dumps(fresh)])
    stored = _setting(source, SOURCE_ID_KEY)
    return str(stored)


def _sqlite_order(source: Database, tables: list[str]) -> list[str]:
    """Parents before children (foreign keys as SQLite declares them), else by name."""
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for t in tables:
        for fk in source.query(f"PRAGMA foreign_key_list({_q(t)})"):
            if fk["table"] in parents and fk["table"] != t:
                parents[t].add(fk["table"])
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, ps in parents.items() if not ps - set(ordered))
        if not ready:  # a cycle: the rest by name (the target then checks nothing more than the source did)
            ready = sorted(parents)
        for t in ready:
            ordered.append(t)
            parents.pop(t)
    return ordered


def _rows(source: Database, table: str, columns: list[str]) -> Iterator[list[list[Any]]]:
    """The table's rows in batches, in rowid order (keyset paging: the same cost at any size)."""
    cols = ", ".join(_q(c) for c in columns)
    last = None
    while True:
        if last is None:
            page = source.query(f"SELECT rowid AS rowid__, {cols} FROM {_q(table)} ORDER BY rowid LIMIT ?", [BATCH])
        else:
            page = source.query(f"SELECT rowid AS rowid__, {cols} FROM {_q(table)} WHERE rowid > ? "
                                "ORDER BY rowid LIMIT ?", [last, BATCH])
        if not page:
            return
        last = page[-1]["rowid__"]
        yield [[r[c] for c in columns] for r in page]


def _advance_ids(target: Database, table: str, columns: list[str]) -> None:
    """PostgreSQL identity columns: the next generated id comes after the copied ones."""
    if "id" not in columns or getattr(target, "dialect", "") != "postgres":
        return
    with target.transaction() as conn:
        conn.execute(f"SELECT setval(pg_get_serial_sequence(?, 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) "
                     f"FROM {_q(table)}), 1), (SELECT COUNT(*) > 0 FROM {_q(table)}))", [table])


def _data_tables(database: Database) -> dict[str, set[str]]:
    return {t: cols for t, cols in database.table_columns().items()
            if t not in SKIPPED and not t.startswith(("sqlite_", "pg_"))}


def check_target(target: Database, source_key: str) -> bool:
    """True when the target holds an earlier copy of this source, False when it is empty;
    TransferRefused when it holds anything else."""
    marker = _setting(target, MARKER_KEY)
    if isinstance(marker, dict) and marker.get(SOURCE_ID_KEY) == source_key:
        return True
    filled = {t: n for t in sorted(_data_tables(target)) if (n := _count(target, t))}
    if not filled:
        return False
    where = ", ".join(f"{t} ({n})" for t, n in list(filled.items())[:5])
    if isinstance(marker, dict):
        raise TransferRefused(f"the target was filled from another installation ({marker.get('source')}, "
                              f"{marker.get('at')}); it holds rows in {where}")
    raise TransferRefused(f"the target already holds data that did not come from this source: rows in {where}. "
                          "migrate-data only fills an empty database, or finishes its own earlier copy")


def transfer(source: Database, target: Database, *, source_label: str,
             progress: Callable[[str, int], None] | None = None) -> TransferReport:
    """Copy every table of `source` into `target` (both migrated). Raises TransferRefused."""
    key = source_id(source)
    resumed = check_target(target, key)
    if not resumed:
        _put_setting(target, MARKER_KEY, {SOURCE_ID_KEY: key, "source": source_label,
                                          "at": datetime.now(UTC).isoformat(timespec="seconds")})
    source_tables = _data_tables(source)
    target_tables = _data_tables(target)
    report = TransferReport(key, resumed)
    for table in _sqlite_order(source, sorted(source_tables)):
        if table not in target_tables:
            raise TransferRefused(f"the target has no table {table}: is it at the same forge-app version?")
        columns = sorted(source_tables[table] & target_tables[table])
        before = _count(target, table)
        insert = (f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) VALUES "
                  f"({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING")
        for batch in _rows(source, table, columns):
            with target.transaction() as conn:
                conn.executemany(insert, batch)
            if progress is not None:
                progress(table, len(batch))
        _advance_ids(target, table, columns)
        report.tables.append(TableCount(table, _count(source, table), before, _count(target, table)))
    return report


def encrypted_samples(database: Database, limit: int = 3) -> list[str]:
    """A few stored encrypted values (columns named `*_enc`), to check which key opens them."""
    out: list[str] = []
    for table, columns in sorted(_data_tables(database).items()):
        for column in sorted(c for c in columns if c.endswith("_enc")):
            for row in database.query(f"SELECT {_q(column)} AS v FROM {_q(table)} WHERE {_q(column)} IS NOT NULL "
                                      "LIMIT ?", [limit]):
                if isinstance(row["v"], str) and row["v"]:
                    out.append(row["v"])
            if len(out) >= limit:
                return out[:limit]
    return out

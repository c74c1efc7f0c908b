"""Scans, the findings recorded in each, and finding identities across scans."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from forge_app.core.models import Finding, Fingerprint
from storage.database import Database, utcnow
from storage.jobs import insert_job
from storage.records import JobSpec, NewScan, PendingScan, ScanRecord, StoredFinding

PRESENT = ("new", "unchanged")


def _scan(row: dict[str, Any]) -> ScanRecord:
    return ScanRecord(
        id=row["id"], repository_id=row["repository_id"], repository=row["full_name"], forge=row["forge"],
        commit=row["commit_sha"], branch=row["branch"], base_branch=row["base_branch"],
        pull_request=row["pull_request"], status=row["status"],
        count_new=row["count_new"] or 0, count_fixed=row["count_fixed"] or 0,
        count_unchanged=row["count_unchanged"] or 0, blocking=bool(row["blocking"]),
        is_baseline=bool(row["is_baseline"]), base_scan_id=row["base_scan_id"],
        errors=json.loads(row["errors"] or "[]"), meta=json.loads(row["meta"] or "{}"),
        created_at=row["created_at"], completed_at=row["completed_at"], error_detail=row["error_detail"],
        tools=json.loads(row["tools"] or "[]"), tool_counts=json.loads(row.get("tool_counts") or "{}"),
        notes=json.loads(row.get("notes") or "[]"),
    )


def _stored(row: dict[str, Any]) -> StoredFinding:
    return StoredFinding(
        id=row["id"], scan_id=row["scan_id"], identity_id=row["identity_id"], status=row["status"],
        mode=row["mode"], base_line=row["base_line"], first_seen=bool(row["first_seen"]),
        finding=Finding.from_dict(orjson.loads(row["data"])),
    )


def _fp_json(f: Finding) -> str | None:
    """Fingerprints are hex strings, so a compact `value;code;b,b,b;a,a,a` text is
    unambiguous and far cheaper to write and read than JSON."""
    fp = f.fingerprint
    if fp is None:
        return None
    text = f"{fp.value};{fp.code};{','.join(fp.before)};{','.join(fp.after)}"
    if fp.scope:
        text += ";s" + fp.scope
    return text + ";fallback" if fp.fallback else text


def _fp_parse(text: str | None) -> Fingerprint | None:
    if not text:
        return None
    value, code, before, after, *flags = text.split(";")
    return Fingerprint(value, code, tuple(before.split(",")) if before else (),
                       tuple(after.split(",")) if after else (), fallback="fallback" in flags,
                       scope=next((f[1:] for f in flags if f.startswith("s")), ""))


def _light(row: dict[str, Any]) -> StoredFinding:
    """Just what matching needs (rule, path, lines, fingerprint): loading whole findings
    for a 20,000-finding baseline would dominate the upload's time."""
    fp = _fp_parse(row["fp"])
    finding = Finding(rule_id=row["rule_id"], path=row["path"], start_line=row["start_line"],
                      end_line=row["end_line"] or row["start_line"], message="", fingerprint=fp,
                      tool=row.get("tool") or "unknown")
    return StoredFinding(id=row["id"], scan_id=row["scan_id"], identity_id=row["identity_id"], status=row["status"],
                         mode=row["mode"], base_line=row["base_line"], first_seen=bool(row["first_seen"]),
                         finding=finding)


def _counts(scan: NewScan) -> dict[str, int]:
    counts = {"new": 0, "fixed": 0, "unchanged": 0}
    for e in scan.entries:
        counts[e.status] += 1
    return counts


def _tool_counts(scan: NewScan) -> str:
    """{tool: {new, fixed, unchanged}} for every tool the scan ran (zeros included)."""
    out: dict[str, dict[str, int]] = {t: {"new": 0, "fixed": 0, "unchanged": 0} for t in scan.tools}
    for e in scan.entries:
        out.setdefault(e.finding.tool, {"new": 0, "fixed": 0, "unchanged": 0})[e.status] += 1
    return json.dumps(out, sort_keys=True)


def _insert_jobs(db: Any, scan_id: int, jobs: Iterable[JobSpec]) -> None:
    for job in jobs:
        payload = dict(job.payload, scan_id=scan_id)
        key = job.key.format(scan_id=scan_id) if job.key else None
        insert_job(db, job.kind, payload, key=key, group=job.group, run_at=job.run_at,
                   max_attempts=job.max_attempts)


def _serialize(scan: NewScan) -> dict[int, tuple[str | None, str]]:
    """Each entry's fingerprint and JSON text, computed BEFORE the write transaction: for a large
    scan this is seconds of CPU that must not hold SQLite's write lock (issue #11)."""
    return {id(e): (_fp_json(e.finding), orjson.dumps(e.finding.to_dict()).decode())
            for e in scan.entries if e.copy_from is None}


def _write_entries_and_jobs(db: Any, scan_id: int, scan: NewScan, now: str,
                            serialized: dict[int, tuple[str | None, str]] | None = None) -> None:
    """A scan's new identities, its findings and its follow-up jobs, inside the caller's transaction."""
    conn = db.conn
    if serialized is None:
        serialized = _serialize(scan)
    fresh = [e for e in scan.entries if e.identity_id is None]
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM identities").fetchone()[0]
    conn.executemany(
        "INSERT INTO identities (id, repository_id, fingerprint, rule_id, path, code_hash, fp, line, "
        "first_seen_scan_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(top + i + 1, scan.repository_id, e.finding.key, e.finding.rule_id, e.finding.path,
          e.finding.fingerprint.code if e.finding.fingerprint else None, _fp_json(e.finding),
          e.finding.start_line, scan_id, now) for i, e in enumerate(fresh)],
    )
    for i, e in enumerate(fresh):
        e.identity_id = top + i + 1
    copied = [e for e in scan.entries if e.copy_from is not None]
    conn.executemany(
        "INSERT INTO findings (scan_id, identity_id, status, mode, rule_id, path, start_line, end_line, "
        "base_line, fingerprint, fp, first_seen, data, tool) SELECT ?, ?, ?, ?, rule_id, path, start_line, "
        "end_line, ?, fingerprint, fp, 0, data, tool FROM findings WHERE id = ?",
        [(scan_id, e.identity_id, e.status, e.mode, e.base_line, e.copy_from) for e in copied],
    )
    first = {id(e) for e in fresh}
    conn.executemany(
        "INSERT INTO findings (scan_id, identity_id, status, mode, rule_id, path, start_line, end_line, "
        "base_line, fingerprint, fp, first_seen, data, tool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(scan_id, e.identity_id, e.status, e.mode, e.finding.rule_id, e.finding.path,
          e.finding.start_line, e.finding.end_line, e.base_line, e.finding.key, serialized[id(e)][0],
          int(id(e) in first), serialized[id(e)][1], e.finding.tool)
         for e in scan.entries if e.copy_from is None],
    )
    _insert_jobs(db, scan_id, scan.jobs)


_SCAN_SELECT = (
    "SELECT s.*, r.full_name, r.forge FROM scans s JOIN repositories r ON r.id = s.repository_id "
)


class ScanStore:
    database: Database

    def record_scan(self, scan: NewScan) -> int:
        """Store a triaged scan, its new identities and its follow-up jobs in ONE transaction:
        a rejected or crashed upload leaves nothing behind, and no job is lost."""
        now = utcnow()
        counts = _counts(scan)
        serialized = _serialize(scan)
        with self.database.transaction() as db:
            cur = db.execute(
                "INSERT INTO scans (repository_id, commit_sha, branch, base_branch, pull_request, status, tools, "
                "is_baseline, base_scan_id, count_new, count_fixed, count_unchanged, blocking, errors, meta, "
                "created_at, completed_at, tool_counts, notes) "
                "VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [scan.repository_id, scan.commit, scan.branch, scan.base_branch, scan.pull_request,
                 json.dumps(scan.tools), int(scan.is_baseline), scan.base_scan_id, counts["new"],
                 counts["fixed"], counts["unchanged"], int(scan.blocking), json.dumps(scan.errors),
                 json.dumps(scan.meta), now, now, _tool_counts(scan), json.dumps(scan.notes)],
            )
            scan_id = int(cur.lastrowid)
            _write_entries_and_jobs(db, scan_id, scan, now, serialized)
        return scan_id

    def reserve_scan(self, pending: PendingScan) -> int:
        """Store an upload that cannot be triaged yet: a scan in status `processing` with zero
        counts, its findings kept aside, and the jobs that will complete it, in ONE transaction."""
        now = utcnow()
        with self.database.transaction() as db:
            cur = db.execute(
                "INSERT INTO scans (repository_id, commit_sha, branch, base_branch, pull_request, status, tools, "
                "is_baseline, base_scan_id, count_new, count_fixed, count_unchanged, blocking, errors, meta, "
                "created_at, completed_at, notes) "
                "VALUES (?, ?, ?, ?, ?, 'processing', ?, ?, NULL, 0, 0, 0, 0, ?, ?, ?, NULL, ?)",
                [pending.repository_id, pending.commit, pending.branch, pending.base_branch, pending.pull_request,
                 json.dumps(pending.tools), int(pending.is_baseline), json.dumps(pending.errors),
                 json.dumps(pending.meta), now, json.dumps(pending.notes)],
            )
            scan_id = int(cur.lastrowid)
            db.execute(
                "INSERT INTO pending_uploads (scan_id, findings, created_at) VALUES (?, ?, ?)",
                [scan_id, orjson.dumps([f.to_dict() for f in pending.findings]).decode(), now],
            )
            _insert_jobs(db, scan_id, pending.jobs)
        return scan_id

    def pending_upload(self, scan_id: int) -> list[Finding] | None:
        """The findings of a scan still `processing`; None when it is no longer pending."""
        row = self.database.one(
            "SELECT p.findings FROM pending_uploads p JOIN scans s ON s.id = p.scan_id "
            "WHERE p.scan_id = ? AND s.status = 'processing'", [scan_id])
        if row is None:
            return None
        return [Finding.from_dict(d) for d in orjson.loads(row["findings"])]

    def complete_scan(self, scan_id: int, scan: NewScan) -> bool:
        """Record the triage of a `processing` scan, mark it done, drop its pending upload and
        queue its follow-up jobs, in ONE transaction. False (and nothing written) when the
        scan is no longer processing: another worker completed or failed it."""
        now = utcnow()
        counts = _counts(scan)
        serialized = _serialize(scan)
        with self.database.transaction() as db:
            cur = db.execute(
                "UPDATE scans SET status = 'done', base_scan_id = ?, count_new = ?, count_fixed = ?, "
                "count_unchanged = ?, blocking = ?, errors = ?, completed_at = ?, tool_counts = ?, "
                "notes = COALESCE(?, notes) WHERE id = ? AND status = 'processing'",
                [scan.base_scan_id, counts["new"], counts["fixed"], counts["unchanged"], int(scan.blocking),
                 json.dumps(scan.errors), now, _tool_counts(scan), json.dumps(scan.notes) if scan.notes else None,
                 scan_id],
            )
            if cur.rowcount == 0:
                return False
            db.execute("DELETE FROM pending_uploads WHERE scan_id = ?", [scan_id])
            _write_entries_and_jobs(db, scan_id, scan, now, serialized)
        return True

    def fail_scan(self, scan_id: int, detail: str) -> bool:
        """A `processing` scan that cannot be completed: status `failed` with the reason; its
        pending upload is dropped. False when the scan was not processing."""
        with self.database.transaction() as db:
            cur = db.execute(
                "UPDATE scans SET status = 'failed', error_detail = ?, completed_at = ? "
                "WHERE id = ? AND status = 'processing'", [detail[:2000], utcnow(), scan_id])
            if cur.rowcount == 0:
                return False
            db.execute("DELETE FROM pending_uploads WHERE scan_id = ?", [scan_id])
        return True

    def scan(self, scan_id: int) -> ScanRecord | None:
        row = self.database.one(_SCAN_SELECT + "WHERE s.id = ?", [scan_id])
        return _scan(row) if row else None

    def scan_findings(self, scan_id: int, statuses: Iterable[str] | None = None) -> list[StoredFinding]:
        sql = "SELECT * FROM findings WHERE scan_id = ?"
        params: list[Any] = [scan_id]
        if statuses is not None:
            st = list(statuses)
            sql += f" AND status IN ({', '.join('?' for _ in st)})"
            params += st
        return [_stored(r) for r in self.database.query(sql + " ORDER BY path, start_line, rule_id", params)]

    def baseline_for(self, repository_id: int, branch: str, before: int | None = None,
                     commit: str | None = None) -> tuple[ScanRecord, list[StoredFinding]] | None:
        """The latest finished scan of `branch` (not a PR scan) and the findings present in it,
        loaded light (rule, path, lines, fingerprint): enough to match against. With `commit`
        (a PR's base commit), a scan of exactly that commit wins: what the PR branched from,
        not what the branch became since. With `before`, only scans uploaded before that scan
        (one completed after waiting for its sources)."""
        limit = before if before is not None else 2**62
        row = None
        if commit:
            row = self.database.one(
                _SCAN_SELECT + "WHERE s.repository_id = ? AND s.commit_sha = ? AND s.is_baseline = 1 "
                "AND s.status = 'done' AND s.id < ? ORDER BY s.id DESC LIMIT 1",
                [repository_id, commit, limit],
            )
        if row is None:
            row = self.database.one(
                _SCAN_SELECT + "WHERE s.repository_id = ? AND s.branch = ? AND s.is_baseline = 1 "
                "AND s.status = 'done' AND s.id < ? ORDER BY s.id DESC LIMIT 1",
                [repository_id, branch, limit],
            )
        if row is None:
            return None
        light = self.database.query(
            "SELECT id, scan_id, identity_id, status, mode, base_line, first_seen, rule_id, path, start_line, "
            "end_line, fp FROM findings WHERE scan_id = ? AND status IN ('new', 'unchanged')", [row["id"]])
        return _scan(row), [_light(r) for r in light]

    def baselines_for(self, repository_id: int, branch: str, tools: Iterable[str], before: int | None = None,
                      commit: str | None = None) -> list[tuple[ScanRecord, list[StoredFinding]]]:
        """Per tool, what `baseline_for` gives for the whole scan: the latest finished scan of `branch`
        (of exactly `commit` when there is one) that ran that tool, with only that tool's findings.
        Several scanners can so upload to one branch, separately or together, and each is compared
        with its own history. One entry per baseline scan, newest first. Without any tool named, the
        whole latest scan (`baseline_for`)."""
        tools = sorted(set(tools))
        if not tools:
            whole = self.baseline_for(repository_id, branch, before=before, commit=commit)
            return [whole] if whole else []
        limit = before if before is not None else 2**62
        ran = ("(EXISTS (SELECT 1 FROM json_each(s.tools) j WHERE j.value = ?) OR "
               "EXISTS (SELECT 1 FROM findings f WHERE f.scan_id = s.id AND f.tool = ?))")
        chosen: dict[int, tuple[dict[str, Any], list[str]]] = {}
        for tool in tools:
            row = None
            if commit:
                row = self.database.one(
                    _SCAN_SELECT + "WHERE s.repository_id = ? AND s.commit_sha = ? AND s.is_baseline = 1 "
                    f"AND s.status = 'done' AND s.id < ? AND {ran} ORDER BY s.id DESC LIMIT 1",
                    [repository_id, commit, limit, tool, tool])
            if row is None:
                row = self.database.one(
                    _SCAN_SELECT + "WHERE s.repository_id = ? AND s.branch = ? AND s.is_baseline = 1 "
                    f"AND s.status = 'done' AND s.id < ? AND {ran} ORDER BY s.id DESC LIMIT 1",
                    [repository_id, branch, limit, tool, tool])
            if row is not None:
                chosen.setdefault(row["id"], (row, []))[1].append(tool)
        out = []
        for scan_id in sorted(chosen, reverse=True):
            row, its_tools = chosen[scan_id]
            marks = ", ".join("?" for _ in its_tools)
            light = self.database.query(
                "SELECT id, scan_id, identity_id, status, mode, base_line, first_seen, rule_id, path, start_line, "
                f"end_line, fp, tool FROM findings WHERE scan_id = ? AND status IN ('new', 'unchanged') "
                f"AND tool IN ({marks})", [scan_id, *its_tools])
            out.append((_scan(row), [_light(r) for r in light]))
        return out

    def latest_baseline_branch(self, repository_id: int) -> str | None:
        """The branch of the repository's most recent branch (non-PR) scan."""
        row = self.database.one(
            "SELECT branch FROM scans WHERE repository_id = ? AND is_baseline = 1 AND branch IS NOT NULL "
            "ORDER BY id DESC LIMIT 1", [repository_id])
        return row["branch"] if row else None

    def latest_pull_request_scan_id(self, repository_id: int, pull_request: int) -> int | None:
        """The newest finished scan of a PR/MR: only its results are published (a scan still
        processing may yet fail, so it does not count)."""
        row = self.database.one(
            "SELECT MAX(id) AS id FROM scans WHERE repository_id = ? AND pull_request = ? AND status = 'done'",
            [repository_id, pull_request])
        return row["id"] if row else None

    def identity_pool(self, repository_id: int, rule_paths: Iterable[tuple[str, str]]) -> list[tuple[int, Finding]]:
        """Known identities for these (rule, path) pairs, as findings to match against, so a
        finding seen before anywhere in the repository (another PR, a merged branch) keeps its identity."""
        pairs = sorted(set(rule_paths))
        out: list[tuple[int, Finding]] = []
        for i in range(0, len(pairs), 400):
            chunk = pairs[i : i + 400]
            where = " OR ".join("(rule_id = ? AND path = ?)" for _ in chunk)
            params: list[Any] = [repository_id]
            for rule_id, path in chunk:
                params += [rule_id, path]
            for row in self.database.query(
                "SELECT id, rule_id, path, fp, line, fingerprint FROM identities "
                f"WHERE repository_id = ? AND ({where})",
                params,
            ):
                fp = _fp_parse(row["fp"])
                out.append((row["id"], Finding(rule_id=row["rule_id"], path=row["path"], start_line=row["line"] or 1,
                                               end_line=row["line"] or 1, message="", fingerprint=fp)))
        return out


"""The console's read queries: the indexed severity expression agrees with a real JSON parse,
and page queries read the index, not every finding's JSON."""

from __future__ import annotations

from starlette.testclient import TestClient

from storage.console import SEVERITY_SQL, ConsoleQueries, FindingFilter
from tests.web.scan_helpers import finding, upload

TRICKY = [
    ("message with quotes", {"message": 'bad "severity":"error" here', "severity": "info"}),
    ("metadata severity", {"metadata": {"severity": "HIGH", "nested": {"severity": "error"}}, "severity": "warning"}),
    ("snippet", {"snippet": '{"severity":"error"}', "severity": "info"}),
    ("backslashes", {"message": 'x\\\\"severity\\":\\"error', "severity": "warning"}),
]


def test_severity_expression_equals_json_extract(client: TestClient, storage, upload_token):
    items = []
    for i, (_, changes) in enumerate(TRICKY):
        f = finding(f"rule.{i}", path=f"p{i}.py", line=i + 1, code=f"c{i}()")
        f.update(changes)
        items.append(f)
    r = client.post("/api/v1/scans", json=upload(items), headers={"Authorization": f"Bearer {upload_token}"})
    assert r.status_code == 201, r.text
    rows = storage.database.query(
        f"SELECT {SEVERITY_SQL} AS fast, json_extract(data, '$.severity') AS exact FROM findings f")
    assert len(rows) == len(TRICKY)
    assert all(r["fast"] == r["exact"] for r in rows), rows
    q = ConsoleQueries(storage.database)
    for severity, expected in (("info", 2), ("warning", 2), ("error", 0)):
        assert q.findings_page(r.json()["id"], ("new",), FindingFilter(severity=severity), 50, 0)[1] == expected


def test_page_queries_use_the_console_index(storage):
    plan = storage.database.query(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM findings f WHERE f.scan_id = ? AND f.status IN ('new', 'unchanged') "
        f"AND instr(f.path, ?) > 0 AND {SEVERITY_SQL} = ?", [1, "src", "error"])
    assert any("findings_console" in p["detail"] for p in plan), plan


def test_path_filter_is_literal(client, storage, upload_token):
    items = [finding("r", path="a%b/x.py", line=1, code="a()"), finding("r", path="axb/x.py", line=2, code="b()")]
    r = client.post("/api/v1/scans", json=upload(items), headers={"Authorization": f"Bearer {upload_token}"})
    q = ConsoleQueries(storage.database)
    rows, total = q.findings_page(r.json()["id"], ("new",), FindingFilter(path="a%b"), 50, 0)
    assert total == 1 and rows[0]["path"] == "a%b/x.py"

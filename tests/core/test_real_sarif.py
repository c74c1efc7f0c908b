"""Real, unmodified SARIF from ruff 0.17.6 and bandit 1.9.4 (PyPI), generated once on a sample
(tests/fixtures/sarif/real, MANIFEST.json): absolute URIs, one-keyword regions, two tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import ReportError
from forge_app.core.parsing import load_report

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "real"
ROOT = "/tmp/forge-app-sample"  # where the reports were generated: ruff writes absolute file:/// URIs
SOURCE = (REAL / "sample" / "app" / "views.py").read_text()


def test_ruff_needs_the_root_its_absolute_uris_point_into():
    raw = (REAL / "ruff-0.17.6.sarif").read_bytes()
    with pytest.raises(ReportError, match="root"):
        load_report(raw, source="ruff.sarif")
    report = load_report(raw, source="ruff.sarif", root=ROOT)
    assert {f.path for f in report.findings} == {"app/views.py"} and report.errors == ()
    assert [f.tool for f in report.findings] == ["ruff"] * 6


def test_ruffs_keyword_and_one_character_regions_are_widened_for_identity():
    report = load_report((REAL / "ruff-0.17.6.sarif").read_bytes(), root=ROOT)
    found = fingerprint_findings(list(report.findings), lambda p: SOURCE)
    asserts = [f for f in found if f.rule_id == "S101"]
    assert [(f.start_col, f.end_col) for f in asserts] == [(5, 11), (5, 11)]  # the region is kept
    assert asserts[0].fingerprint.code != asserts[1].fingerprint.code  # `assert cmd` vs `assert request.user`
    (ruf,) = [f for f in found if f.rule_id == "RUF001"]
    assert ruf.end_col - ruf.start_col == 1 and ruf.fingerprint.scope  # one character, inside `def greet`


def test_bandit_and_ruff_in_one_upload_keep_their_tools():
    bandit = load_report((REAL / "bandit-1.9.4.sarif").read_bytes(), source="bandit.sarif")
    assert bandit.tool == "Bandit" and len(bandit.findings) == 6 and bandit.errors == ()
    assert json.loads((REAL / "bandit-1.9.4.sarif").read_text())["runs"][0]["tool"]["driver"]["name"] == "Bandit"


def test_two_real_tools_uploaded_raw_to_one_branch(client, upload_token):
    auth = {"Authorization": f"Bearer {upload_token}"}
    bandit = json.loads((REAL / "bandit-1.9.4.sarif").read_text())
    ruff = json.loads((REAL / "ruff-0.17.6.sarif").read_text())
    first = client.post(f"/api/v1/scans?commit={'1' * 40}&branch=main", json=bandit, headers=auth).json()
    assert first["counts"] == {"new": 6, "fixed": 0, "unchanged": 0}
    second = client.post(f"/api/v1/scans?commit={'1' * 40}&branch=main&root={ROOT}", json=ruff, headers=auth)
    assert second.status_code == 201, second.text
    assert second.json()["counts"] == {"new": 6, "fixed": 0, "unchanged": 0}  # bandit's are not "fixed"
    again = client.post(f"/api/v1/scans?commit={'2' * 40}&branch=main", json=bandit, headers=auth).json()
    assert again["counts"] == {"new": 0, "fixed": 0, "unchanged": 6}

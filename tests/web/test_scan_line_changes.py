"""`line_changes` in an upload: the diff from the base commit decides identity, when the
baseline was scanned at that very commit."""

from __future__ import annotations

import pytest

from tests.web.scan_helpers import SHA_BASE, finding, upload

AUTH = "Authorization"


def pr_doc(base_commit: str, line_changes) -> dict:
    doc = upload([finding(line=5), finding(line=12)], pr=4, branch="feature", base_branch="main")
    doc["base_commit"] = base_commit
    doc["line_changes"] = line_changes
    return doc


# Two lines inserted at line 5: head 12 is base 10, head 5 and 6 are new lines.
CHANGES = {"renames": {}, "added": [], "blocks": {"app/main.py": [[5, 5, 5, 7]]}}


def test_the_diff_says_which_of_two_identical_findings_is_the_original(client, upload_token):
    headers = {AUTH: f"Bearer {upload_token}"}
    client.post("/api/v1/scans", json=upload([finding(line=10)], commit=SHA_BASE), headers=headers)
    pr = client.post("/api/v1/scans", json=pr_doc(SHA_BASE, CHANGES), headers=headers).json()
    assert pr["counts"] == {"new": 1, "fixed": 0, "unchanged": 1}
    assert [f["line"] for f in pr["new_findings"]] == [5]
    # A diff from another commit than the baseline's says nothing about it: fingerprints decide
    # (equal values pair in line order, so the first one is taken for the original).
    pr = client.post("/api/v1/scans", json=pr_doc("c" * 40, CHANGES), headers=headers).json()
    assert [f["line"] for f in pr["new_findings"]] == [12]


@pytest.mark.parametrize("bad", [
    [], {"blocks": []}, {"blocks": {"app/main.py": [[5, 4, 5, 7]]}}, {"blocks": {"app/main.py": [[0, 1, 1, 1]]}},
    {"blocks": {"app/main.py": [[9, 9, 9, 10], [1, 1, 1, 2]]}}, {"renames": {"a.py": 3}},
    {"blocks": {"../x.py": [[1, 1, 1, 2]]}},
])
def test_malformed_line_changes_are_a_400_naming_the_field(client, upload_token, bad):
    r = client.post("/api/v1/scans", json=pr_doc(SHA_BASE, bad), headers={AUTH: f"Bearer {upload_token}"})
    assert r.status_code == 400, r.text
    assert "/line_changes" in r.json()["detail"] and r.json()["error"] in ("invalid_upload", "invalid_path")


# ---- raw SARIF: absolute URIs under `root`, descriptive schema breaks as warnings ----

def _ruff_like(root: str) -> dict:
    import json
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    log = json.loads((fixtures / "sarif/examples/semgrep.with-autofix.sarif").read_text())
    run = log["runs"][0]
    run.pop("originalUriBaseIds", None)
    for res in run["results"]:
        loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
        loc["uri"] = f"file://{root}/{loc['uri']}"
        loc.pop("uriBaseId", None)
    fixed = next(res for res in run["results"] if res.get("fixes"))
    fixed["fixes"][0]["description"] = {"text": None}  # what ruff 0.17.6 wrote once on django
    return log


def test_a_raw_sarif_post_with_absolute_uris_and_a_null_text(client, upload_token):
    headers = {AUTH: f"Bearer {upload_token}"}
    log = _ruff_like("/home/runner/work/demo")
    r = client.post(f"/api/v1/scans?commit={'d' * 40}&branch=main", json=log, headers=headers)
    assert r.status_code == 400 and "root" in r.json()["detail"]
    r = client.post(f"/api/v1/scans?commit={'d' * 40}&branch=main&root=/home/runner/work/demo", json=log,
                    headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["counts"]["new"] == len(log["runs"][0]["results"])
    assert any("fixes/0/description: ignored" in e for e in body["errors"])
    r = client.post(f"/api/v1/scans?commit={'d' * 40}&root=relative/dir", json=log, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_upload" and "/root" in r.json()["detail"]

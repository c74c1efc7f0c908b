"""POST/GET /api/v1/scans: what CI jobs and the CLI rely on."""

from __future__ import annotations

import gzip
import json

from tests.web.scan_helpers import SHA_BASE, SHA_HEAD, finding, upload


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_upload_answers_201_with_the_scan_and_get_returns_it(client, upload_token):
    r = client.post("/api/v1/scans", json=upload([finding()]), headers=auth(upload_token))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == f"http://testserver/api/v1/scans/{body['id']}"
    assert body["counts"] == {"new": 1, "fixed": 0, "unchanged": 0}
    assert body["status"] == "done" and body["blocking"] is False
    got = client.get(f"/api/v1/scans/{body['id']}", headers=auth(upload_token)).json()
    for key in ("id", "repository", "commit", "branch", "pull_request", "status", "counts", "blocking"):
        assert got[key] == body[key]
    assert got["repository"] == "octo/demo" and got["pull_request"] is None and got["commit"] == SHA_HEAD


def test_pr_scan_is_diffed_against_the_base_branch_scan(client, upload_token):
    old, moved = finding(line=3), finding(line=30)  # same code and fingerprint: it only moved
    extra = finding(rule="python.lang.exec", code="exec(y)", line=7)
    base = client.post("/api/v1/scans", json=upload([old], commit=SHA_BASE), headers=auth(upload_token)).json()
    pr = client.post("/api/v1/scans", json=upload([moved, extra], pr=5, branch="feature", base_branch="main"),
                     headers=auth(upload_token)).json()
    assert pr["counts"] == {"new": 1, "fixed": 0, "unchanged": 1}
    assert pr["baseline_scan_id"] == base["id"]
    assert [f["rule_id"] for f in pr["new_findings"]] == ["python.lang.exec"]


def test_blocking_verdict_follows_the_policy_board(client, upload_token, admin_headers):
    r = client.put("/api/v1/policies", json={"default": "comment", "rules": {"python.lang.*": "block"}},
                   headers=admin_headers)
    assert r.status_code == 200
    body = client.post("/api/v1/scans", json=upload([finding()], pr=2, branch="f"), headers=auth(upload_token)).json()
    assert body["blocking"] is True
    assert body["new_findings"][0]["mode"] == "block"


def test_rule_metadata_actions_apply_when_no_policy_names_the_rule(client, upload_token):
    monitored = finding(metadata={"dev.semgrep.actions": []})
    body = client.post("/api/v1/scans", json=upload([monitored], pr=2, branch="f"), headers=auth(upload_token)).json()
    assert body["new_findings"][0]["mode"] == "monitor" and body["blocking"] is False
    blocked = finding(rule="r.block", metadata={"dev.semgrep.actions": ["block"]})
    body = client.post("/api/v1/scans", json=upload([blocked], pr=3, branch="g"), headers=auth(upload_token)).json()
    assert body["blocking"] is True


def test_gzip_upload_is_accepted(client, upload_token):
    raw = gzip.compress(json.dumps(upload([finding()])).encode())
    r = client.post("/api/v1/scans", content=raw,
                    headers={**auth(upload_token), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_raw_semgrep_report_with_metadata_in_the_query(client, upload_token, fixtures):
    raw = (fixtures / "semgrep" / "autofix.dryrun.results.json").read_bytes()
    r = client.post(f"/api/v1/scans?commit={SHA_HEAD}&branch=main", content=raw, headers=auth(upload_token))
    assert r.status_code == 201, r.text
    assert r.json()["counts"]["new"] == len(json.loads(raw)["results"])


def test_token_of_another_repository_is_403_naming_the_problem(client, storage):
    other = storage.create_upload_token("github", "octo/other")
    r = client.post("/api/v1/scans", json=upload([finding()], repository="octo/demo"), headers=auth(other))
    assert r.status_code == 403
    assert r.json()["error"] == "wrong_repository" and "octo/other" in r.json()["detail"]
    mine = storage.create_upload_token("github", "octo/demo")
    scan = client.post("/api/v1/scans", json=upload([finding()]), headers=auth(mine)).json()
    assert client.get(f"/api/v1/scans/{scan['id']}", headers=auth(other)).status_code == 403


def test_missing_or_unknown_token_is_401(client):
    assert client.post("/api/v1/scans", json=upload([])).status_code == 401
    r = client.post("/api/v1/scans", json=upload([]), headers=auth("fa_upload_nope"))
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_admin_can_read_any_scan(client, upload_token, admin_headers):
    scan = client.post("/api/v1/scans", json=upload([finding()]), headers=auth(upload_token)).json()
    r = client.get(f"/api/v1/scans/{scan['id']}?findings=all", headers=admin_headers)
    assert r.status_code == 200 and r.json()["findings"][0]["status"] == "new"
    assert client.get("/api/v1/scans/999", headers=admin_headers).status_code == 404


def test_a_pr_without_a_base_branch_uses_the_branch_baselines_are_on(client, upload_token):
    old = finding(line=3)
    base = client.post("/api/v1/scans", json=upload([old], commit=SHA_BASE, branch="master"),
                       headers=auth(upload_token)).json()
    pr = client.post("/api/v1/scans", json=upload([finding(line=9)], pr=4, branch="feature", base_branch=None),
                     headers=auth(upload_token)).json()
    assert pr["base_branch"] == "master" and pr["baseline_scan_id"] == base["id"]
    assert pr["counts"] == {"new": 0, "fixed": 0, "unchanged": 1}


def test_a_pr_is_compared_with_the_scan_of_its_base_commit(client, upload_token):
    """main had eval at the PR's branch point and fixed it since: the PR, which never touched
    that code, does not introduce it."""
    old = finding(line=3)
    client.post("/api/v1/scans", json=upload([old], commit=SHA_BASE), headers=auth(upload_token))
    client.post("/api/v1/scans", json=upload([], commit="d" * 40), headers=auth(upload_token))  # fixed on main
    doc = upload([finding(line=3)], pr=6, branch="feature", base_branch="main")
    doc["base_commit"] = SHA_BASE
    pr = client.post("/api/v1/scans", json=doc, headers=auth(upload_token)).json()
    assert pr["counts"] == {"new": 0, "fixed": 0, "unchanged": 1} and pr["blocking"] is False
    doc.pop("base_commit")
    latest = client.post("/api/v1/scans", json=doc, headers=auth(upload_token)).json()
    assert latest["counts"]["new"] == 1  # against the latest main scan it looks new


def test_a_malformed_base_commit_is_refused(client, upload_token):
    doc = upload([finding()], pr=6, branch="feature")
    doc["base_commit"] = "abc"
    r = client.post("/api/v1/scans", json=doc, headers=auth(upload_token))
    assert r.status_code == 400 and "base_commit" in r.json()["detail"]


def test_a_renamed_file_keeps_its_findings(client, upload_token):
    client.post("/api/v1/scans", json=upload([finding(path="old/a.py")], commit=SHA_BASE), headers=auth(upload_token))
    doc = upload([finding(path="new/a.py")], pr=8, branch="feature", base_branch="main")
    doc["renames"] = {"old/a.py": "new/a.py"}
    pr = client.post("/api/v1/scans", json=doc, headers=auth(upload_token)).json()
    assert pr["counts"] == {"new": 0, "fixed": 0, "unchanged": 1}
    doc["renames"] = {"old/a.py": "../escape.py"}
    r = client.post("/api/v1/scans", json=doc, headers=auth(upload_token))
    assert r.status_code == 400 and "/renames/old/a.py" in r.json()["detail"]

"""The `semgrep ci` endpoints, fed the requests the real CLI 1.182.0 sent (tests/fixtures/semgrep-ci/):
the answers it needs, the pipeline behind them, diff-aware scans as partial, and bad input."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from forge_app.services.rules import RuleCatalog

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "semgrep-ci"
REPO = "owner/repo"  # what the captured CLI sent as SEMGREP_REPO_NAME
RULES = """\
rules:
  - id: python.lang.security.audit.insecure-transport.requests.request-with-http.request-with-http
    pattern: requests.request("...", "=~/^http:/")
    message: http
    languages: [python]
    severity: INFO
  - id: python.flask.security.audit.debug-enabled.debug-enabled
    pattern: $APP.run(..., debug=True, ...)
    message: debug
    languages: [python]
    severity: WARNING
"""


def capture(kind: str, name: str) -> dict[str, Any]:
    [path] = (CAPTURES / kind).glob(f"*-{name}.body.json")
    return json.loads(path.read_text())


@pytest.fixture
def ci(app, storage, tmp_path: Path):
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    app.state.rule_catalog = RuleCatalog(str(rules))
    token = storage.create_upload_token("github", REPO)
    return {"Authorization": f"Bearer {token}"}


def start(client, headers, body: dict[str, Any]) -> int:
    r = client.post("/api/cli/v2/scans", json=body, headers=headers)
    assert r.status_code == 200, r.text
    info = r.json()["info"]
    assert info["enabled_products"] == ["sast"] and isinstance(info["deployment_id"], int) and info["deployment_name"]
    return info["id"]


def run(client, headers, kind: str, *, full: bool | None = None, pr: str | None = "5",
        results: dict[str, Any] | None = None) -> dict[str, Any]:
    body = capture(kind, "api_cli_v2_scans")
    body["scan_metadata"]["unique_id"] = str(uuid.uuid4())  # a new run of the CLI
    if full is not None:
        body["project_metadata"]["is_full_scan"] = full
    body["project_metadata"]["pull_request_id"] = pr
    if pr is None:
        body["project_metadata"]["branch"] = "master"
    scan_id = start(client, headers, body)
    config = client.get(f"/api/cli/v2/scans/{body['scan_metadata']['unique_id']}/config", headers=headers)
    assert config.status_code == 200 and config.json()["status"] == "success"
    r = client.post(f"/api/agent/scans/{scan_id}/results",
                    json=results or capture(kind, "api_agent_scans_4242_results"), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["errors"] == []
    done = client.post(f"/api/agent/scans/{scan_id}/complete", json=capture(kind, "api_agent_scans_4242_complete"),
                       headers=headers)
    assert done.status_code == 200 and done.json()["success"] is True, done.text
    scan = client.get(f"/api/v1/scans/{r.json()['task_id']}?findings=all", headers=headers).json()
    return {"run": scan_id, "scan": scan, "complete": done.json(), "config": config.json()}


def test_captured_diff_scan_is_answered_as_the_cli_needs_and_stored_like_an_upload(client, ci, storage):
    body = capture("diff-scan-autofix", "api_cli_v2_scans")
    first = start(client, ci, body)
    assert start(client, ci, body) == first  # the CLI re-POSTs the same unique_id after a polling timeout
    config = client.get(f"/api/cli/v2/scans/{body['scan_metadata']['unique_id']}/config", headers=ci).json()
    assert config["engine_params"] == {"autofix": True}
    served = config["config"]["rules"]["rules"]
    assert [r["metadata"]["dev.semgrep.actions"] for r in served] == [["comment"], ["comment"]]  # board default

    results = capture("diff-scan-autofix", "api_agent_scans_4242_results")
    r = client.post(f"/api/agent/scans/{first}/results", json=results, headers=ci)
    assert r.status_code == 200 and r.json()["errors"] == [] and r.json()["task_id"]
    again = client.post(f"/api/agent/scans/{first}/results", json=results, headers=ci)  # a retried POST
    assert again.json()["task_id"] == r.json()["task_id"]
    assert len(storage.database.query("SELECT id FROM scans")) == 1

    scan = client.get(f"/api/v1/scans/{r.json()['task_id']}?findings=all", headers=ci).json()
    assert (scan["repository"], scan["commit"], scan["branch"], scan["pull_request"]) == (
        REPO, "0055ef29e3a3f6cf40371555a216474b24f46bb4", "feature", 5)
    assert scan["status"] == "done" and scan["counts"]["new"] == len(results["findings"]) == 15
    with_fix = [f for f in scan["findings"] if f.get("fix")]
    assert with_fix and all(f["fix"]["lines"] for f in with_fix)  # fixed_lines became suggestions
    done = client.post(f"/api/agent/scans/{first}/complete", json=capture("diff-scan-autofix",
                       "api_agent_scans_4242_complete"), headers=ci).json()
    assert done == {"success": True, "app_block_override": False, "app_block_reason": ""}
    stored = storage.ci_run(first)
    assert (stored.state, stored.exit_code, stored.is_full_scan) == ("complete", 1, False)


def test_a_diff_aware_scan_never_calls_a_base_finding_fixed_but_a_full_scan_does(client, ci):
    base = run(client, ci, "full-scan-no-autofix", pr=None)["scan"]
    assert base["pull_request"] is None and base["counts"]["new"] > 15
    # The diff-aware scan sent only the findings in changed code: the others were not looked at.
    partial = run(client, ci, "diff-scan-autofix", pr="5")["scan"]
    assert partial["baseline_scan_id"] == base["id"]
    assert partial["counts"]["fixed"] == 0
    assert partial["counts"]["new"] + partial["counts"]["unchanged"] >= base["counts"]["new"]
    # The same findings sent as a full scan: what is absent is fixed.
    full = run(client, ci, "diff-scan-autofix", pr="6", full=True)["scan"]
    assert full["counts"]["fixed"] > 0
    assert full["counts"]["fixed"] + full["counts"]["unchanged"] == base["counts"]["new"]


def test_complete_overrides_the_cli_when_the_board_blocks_what_it_let_through(client, ci, admin_headers):
    results = copy.deepcopy(capture("diff-scan-autofix", "api_agent_scans_4242_results"))
    first = results["findings"][0]
    first["metadata"]["dev.semgrep.actions"] = ["comment"]  # what the CLI was served
    # The board changed between the config and the results.
    assert client.put("/api/v1/policies", json={"default": "comment", "rules": {first["check_id"]: "block"}},
                      headers=admin_headers).status_code == 200
    done = run(client, ci, "diff-scan-autofix", results=results)
    verdict = done["complete"]
    assert verdict["app_block_override"] is True
    assert f"{first['check_id']} at {first['path']}:{first['line']}" in verdict["app_block_reason"]
    assert verdict["app_blocking_match_based_ids"] == [first["match_based_id"]]
    assert done["scan"]["blocking"] is True


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "invalid_json"),
    ({"project_metadata": {}}, 400, "invalid_upload"),
    ("no-unique-id", 400, "invalid_upload"),
    ("short-commit", 400, "invalid_upload"),
    ("other-repo", 403, "wrong_repository"),
])
def test_bad_scan_starts_are_refused_and_nothing_is_stored(client, ci, storage, body, status, code):
    if isinstance(body, str):
        doc = capture("diff-scan-autofix", "api_cli_v2_scans")
        if body == "no-unique-id":
            del doc["scan_metadata"]["unique_id"]
        elif body == "short-commit":
            doc["project_metadata"]["commit"] = "0055ef2"
        else:
            doc["project_metadata"]["repository"] = "someone/else"
        body = doc
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = client.post("/api/cli/v2/scans", headers=ci, **kwargs)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert r.json()["detail"]
    assert storage.database.query("SELECT id FROM semgrep_ci_runs") == []


def test_tokens_are_checked_on_every_endpoint(client, ci, storage):
    body = capture("diff-scan-autofix", "api_cli_v2_scans")
    run_id = start(client, ci, body)
    other = {"Authorization": f"Bearer {storage.create_upload_token('github', 'owner/other')}"}
    unique_id = body["scan_metadata"]["unique_id"]
    for method, path in (("POST", "/api/cli/v2/scans"), ("GET", f"/api/cli/v2/scans/{unique_id}/config"),
                         ("POST", f"/api/agent/scans/{run_id}/results"),
                         ("POST", f"/api/agent/scans/{run_id}/complete"),
                         ("POST", f"/api/agent/scans/{run_id}/error")):
        for headers in ({}, {"Authorization": "Bearer fa_upload_wrong"}):
            r = client.request(method, path, json={}, headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (method, path, r.text)
        if path != "/api/cli/v2/scans":  # another repository's token does not see this run
            assert client.request(method, path, json={}, headers=other).status_code == 404, path
    assert client.post("/api/agent/scans/999/results", json={"findings": []}, headers=ci).status_code == 404
    assert client.post("/api/agent/scans/abc/results", json={"findings": []}, headers=ci).status_code == 404


def test_bad_results_are_refused_with_the_reason(client, ci, storage):
    run_id = start(client, ci, capture("diff-scan-autofix", "api_cli_v2_scans"))
    for body, needle in (([], "'findings' list"), ({"findings": {}}, "'findings' list"),
                         ({"findings": [{"check_id": "x", "path": "a.py", "line": 0}]}, "line number")):
        r = client.post(f"/api/agent/scans/{run_id}/results", json=body, headers=ci)
        assert r.status_code == 400 and needle in r.json()["detail"], r.text
    assert storage.database.query("SELECT id FROM scans") == []
    # The CLI's error report is recorded; no scan, nothing published.
    r = client.post(f"/api/agent/scans/{run_id}/error", json={"exit_code": 2, "stderr": ""}, headers=ci)
    assert r.status_code == 200
    assert (storage.ci_run(run_id).state, storage.ci_run(run_id).exit_code) == ("error", 2)


def test_no_rules_and_the_pro_engine_are_refused_with_what_to_do(client, app, ci, tmp_path):
    app.state.rule_catalog = RuleCatalog(None)
    r = client.post("/api/cli/v2/scans", json=capture("diff-scan-autofix", "api_cli_v2_scans"), headers=ci)
    assert r.status_code == 422 and "FORGE_APP_RULES" in r.json()["detail"]
    pro = client.get("/api/agent/deployments/deepbinary/manylinux", headers=ci)
    assert pro.status_code == 403 and "--oss-only" in pro.json()["detail"]
    me = client.get("/api/agent/deployments/current", headers=ci).json()
    assert me["deployment"]["display_name"] == REPO


def test_openapi_describes_the_semgrep_ci_and_rules_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/cli/v2/scans", "/api/cli/v2/scans/{unique_id}/config", "/api/agent/scans/{run_id}/results",
                 "/api/agent/scans/{run_id}/complete", "/api/agent/scans/{run_id}/error", "/api/v1/rules",
                 "/api/v1/rules/{name}"):
        assert path in paths, path


def ci_scan(client, headers, findings: list[dict[str, Any]], *, commit: str, branch: str, pr: str | None,
            full: bool) -> int:
    meta = {"repository": REPO, "commit": commit, "branch": branch, "pull_request_id": pr, "is_full_scan": full}
    run_id = start(client, headers, {"project_metadata": meta, "scan_metadata": {"unique_id": str(uuid.uuid4())}})
    r = client.post(f"/api/agent/scans/{run_id}/results", json={"findings": findings, "ignores": []}, headers=headers)
    assert r.status_code == 200, r.text
    assert client.post(f"/api/agent/scans/{run_id}/complete", json={"exit_code": 0}, headers=headers).json()["success"]
    return int(r.json()["task_id"])


def test_a_finding_the_base_gained_keeps_its_pr_thread_when_a_diff_aware_scan_stops_sending_it(client, ci, storage):
    x = {"check_id": "python.flask.security.audit.debug-enabled.debug-enabled", "path": "app.py", "line": 9,
         "column": 5, "end_line": 9, "end_column": 30, "message": "debug", "severity": 1,
         "syntactic_id": "a" * 32, "match_based_id": "b" * 64 + "_0"}
    ci_scan(client, ci, [], commit="1" * 40, branch="main", pr=None, full=True)
    first = ci_scan(client, ci, [x], commit="2" * 40, branch="feature", pr="7", full=False)
    [commented] = storage.scan_findings(first, ["new"])
    ci_scan(client, ci, [x], commit="3" * 40, branch="main", pr=None, full=True)  # main got the same code
    # The PR's next diff-aware scan (against the new main) no longer sends it: not fixed, still present.
    later = ci_scan(client, ci, [], commit="4" * 40, branch="feature", pr="7", full=False)
    scan = client.get(f"/api/v1/scans/{later}", headers=ci).json()
    assert scan["counts"]["fixed"] == 0
    present = {sf.identity_id for sf in storage.scan_findings(later, ["new", "unchanged"])}
    assert commented.identity_id in present  # publishing resolves only threads of absent identities


def test_an_account_the_marketplace_does_not_serve_is_told_and_never_blocked(app, ci, settings, storage,
                                                                              admin_headers):
    from starlette.testclient import TestClient

    from forge_app.core.plans import PlanLimits
    from forge_app.web.app import create_app

    plans = {"Pro": PlanLimits(repositories=None, private_repositories=True, block=True)}  # nobody bought it
    marketplace = create_app(dataclasses.replace(settings, marketplace_plans=plans), storage, run_worker=False)
    marketplace.state.rule_catalog = app.state.rule_catalog
    with TestClient(marketplace) as client:
        _unserved_story(client, ci, admin_headers)


def _unserved_story(client, ci, admin_headers) -> None:
    rule_id = "python.flask.security.audit.debug-enabled.debug-enabled"
    policies = client.put("/api/v1/policies", json={"default": "block", "rules": {}}, headers=admin_headers)
    assert policies.status_code == 200
    body = capture("diff-scan-autofix", "api_cli_v2_scans")
    run_id = start(client, ci, body)
    config = client.get(f"/api/cli/v2/scans/{body['scan_metadata']['unique_id']}/config", headers=ci).json()
    served = {r["id"]: r["metadata"]["dev.semgrep.actions"] for r in config["config"]["rules"]["rules"]}
    assert served[rule_id] == ["comment"]  # block rules served as comment rules: the CLI does not fail
    results = capture("diff-scan-autofix", "api_agent_scans_4242_results")
    r = client.post(f"/api/agent/scans/{run_id}/results", json=results, headers=ci).json()
    assert [e["message"] for e in r["errors"]] and "will not publish" in r["errors"][0]["message"]
    done = client.post(f"/api/agent/scans/{run_id}/complete", json={"exit_code": 0}, headers=ci).json()
    assert done["success"] is True and done["app_block_override"] is False


def test_the_link_the_cli_prints_opens_the_console(client):
    r = client.get("/orgs/forge-app/findings?repo=owner/repo&ref=feature", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/projects"

"""Rule files for `semgrep ci`: what Semgrep would refuse is refused with the reason; the admin API;
the rule board's actions on every served rule; FORGE_APP_RULES re-read on SIGHUP."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from forge_app.core.policy import Policy
from forge_app.core.rules import RuleFile, RuleFileError, parse_rule_file, served_rules
from forge_app.services.rules import RuleCatalog, install_sighup_reload

GOOD = """\
rules:
  - id: eval-detected
    pattern: eval($X)
    message: eval is dangerous
    languages: [python]
    severity: WARNING
    fix: ast.literal_eval($X)
  - id: md5
    patterns:
      - pattern: hashlib.md5(...)
      - pattern-not-inside: "# nosec"
    message: md5
    languages: [python]
    severity: INFO
"""


def rule(**fields: object) -> str:
    """A one-rule file; a field given as None is left out."""
    base: dict[str, object] = {"id": "r1", "pattern": "eval($X)", "message": "m", "languages": ["python"],
                               "severity": "ERROR"}
    base.update(fields)
    return yaml.safe_dump({"rules": [{k: v for k, v in base.items() if v is not None}]}, sort_keys=False)


@pytest.mark.parametrize("text, reason", [
    ("rules: [", "invalid YAML at line 1"),
    ("- id: x\n", "top-level 'rules' list"),
    ("rules: []\n", "non-empty list"),
    (rule(id=None), "missing 'id'"),
    (rule(message=None), "missing 'message'"),
    (rule(severity="FATAL"), "'severity' must be one of"),
    (rule(languages=["cobol"]), "unknown language(s) 'cobol'"),
    (rule(pattern=None), "exactly one of pattern"),
    (rule(**{"pattern-regex": "x"}), "found pattern, pattern-regex"),
    (rule(pattern=None, patterns=[{"pattern-sometimes": "x"}]), "unknown operator 'pattern-sometimes'"),
    (rule(fix=[1]), "'fix' must be a string"),
    (GOOD.replace("id: md5", "id: eval-detected"), "appears twice"),
])
def test_a_rule_file_semgrep_would_refuse_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rule_file(text, name="bad.yml")
    assert reason in str(err.value) and str(err.value).startswith("bad.yml")


def test_served_rules_carry_the_rule_boards_actions() -> None:
    text = GOOD + """\
  - id: own-actions
    pattern: exec($X)
    message: exec
    languages: [python]
    severity: ERROR
    metadata:
      dev.semgrep.actions: [comment]
      cwe: CWE-95
"""
    files = [RuleFile("a.yml", "file", tuple(parse_rule_file(text)), text)]
    policy = Policy(default="monitor", rules={"eval-*": "block"})
    served = {r["id"]: r for r in served_rules(files, policy)}
    assert served["eval-detected"]["metadata"]["dev.semgrep.actions"] == ["block"]
    assert served["md5"]["metadata"]["dev.semgrep.actions"] == []  # the board's default
    assert served["own-actions"]["metadata"] == {"dev.semgrep.actions": ["comment"], "cwe": "CWE-95"}
    assert served["eval-detected"]["fix"] == "ast.literal_eval($X)"
    assert "metadata" not in files[0].rules[0]  # the loaded file is not changed


def test_admin_api_manages_rule_files(client, app, admin_headers, upload_token, tmp_path: Path) -> None:
    on_disk = tmp_path / "rules"
    on_disk.mkdir()
    (on_disk / "base.yml").write_text(rule(id="from-disk"))
    app.state.rule_catalog = RuleCatalog(str(on_disk))

    r = client.put("/api/v1/rules/python.yml", content=GOOD, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "python.yml", "source": "api", "rules": ["eval-detected", "md5"]}
    assert client.put("/api/v1/rules/python.yml", content=GOOD, headers=admin_headers).status_code == 200
    listed = client.get("/api/v1/rules", headers=admin_headers).json()
    assert [(f["name"], f["source"]) for f in listed["files"]] == [("base.yml", "file"), ("python.yml", "api")]
    got = client.get("/api/v1/rules/python.yml", headers=admin_headers)
    assert got.json()["content"] == GOOD
    raw = client.get("/api/v1/rules/python.yml", headers={**admin_headers, "Accept": "application/yaml"})
    assert raw.text == GOOD and raw.headers["content-type"].startswith("application/yaml")

    bad = client.put("/api/v1/rules/broken.yml", content=rule(severity="FATAL"), headers=admin_headers)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_rules"
    assert "'severity' must be one of" in bad.json()["detail"]
    clash = client.put("/api/v1/rules/again.yml", content=rule(id="md5"), headers=admin_headers)
    assert clash.status_code == 409 and "md5 (in python.yml)" in clash.json()["detail"]
    disk = client.put("/api/v1/rules/base.yml", content=rule(id="x"), headers=admin_headers)
    assert disk.status_code == 409 and disk.json()["error"] == "managed_by_file"
    assert client.delete("/api/v1/rules/base.yml", headers=admin_headers).status_code == 409
    assert client.put("/api/v1/rules/..secret", content=GOOD, headers=admin_headers).status_code == 400
    assert client.put("/api/v1/rules/x.yml", content=b"\xff\xfe", headers=admin_headers).status_code == 400

    assert client.get("/api/v1/rules", headers={"Authorization": f"Bearer {upload_token}"}).status_code == 403
    assert client.put("/api/v1/rules/y.yml", content=GOOD).status_code == 401

    assert client.delete("/api/v1/rules/python.yml", headers=admin_headers).status_code == 204
    assert client.delete("/api/v1/rules/python.yml", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/rules/python.yml", headers=admin_headers).status_code == 404


def test_forge_app_rules_is_read_again_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rule(id="first"))

    class State:
        pass

    state = State()
    state.rule_catalog = RuleCatalog(str(path))  # type: ignore[attr-defined]
    previous = signal.getsignal(signal.SIGHUP)
    try:
        install_sighup_reload(state)
        assert [f.rule_ids for f in state.rule_catalog.files] == [["first"]]  # type: ignore[attr-defined]
        path.write_text(rule(id="second"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert [f.rule_ids for f in state.rule_catalog.files] == [["second"]]  # type: ignore[attr-defined]
        path.write_text(rule(severity="FATAL"))  # a broken edit: the last good version stays, the reason is kept
        os.kill(os.getpid(), signal.SIGHUP)
        assert [f.rule_ids for f in state.rule_catalog.files] == [["second"]]  # type: ignore[attr-defined]
        assert "'severity' must be one of" in state.rule_catalog.problems[0]  # type: ignore[attr-defined]
        path.unlink()  # gone: the rules served so far stay
        os.kill(os.getpid(), signal.SIGHUP)
        assert [f.rule_ids for f in state.rule_catalog.files] == [["second"]]  # type: ignore[attr-defined]
        path.write_text(rule(id="third"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert [f.rule_ids for f in state.rule_catalog.files] == [["third"]]  # type: ignore[attr-defined]
        assert state.rule_catalog.problems == []  # type: ignore[attr-defined]
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_with_forge_app_semgrep_semgrep_itself_checks_the_patterns(client, admin_headers, monkeypatch) -> None:
    semgrep = Path(sys.executable).with_name("semgrep")
    if not semgrep.exists():
        pytest.skip("semgrep is not installed beside this Python")
    monkeypatch.setenv("FORGE_APP_SEMGREP", str(semgrep))
    r = client.put("/api/v1/rules/broken.yml", content=rule(pattern="eval($X"), headers=admin_headers)
    assert r.status_code == 400, r.text
    assert "Semgrep refuses it" in r.json()["detail"] and "Invalid pattern for Python" in r.json()["detail"]
    assert client.put("/api/v1/rules/ok.yml", content=rule(), headers=admin_headers).status_code == 201

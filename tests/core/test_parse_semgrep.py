"""Semgrep JSON (`semgrep scan --json`) and the `semgrep ci` results body, from real fixtures."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest

from forge_app.core.models import Fix, ReportError
from forge_app.core.parsing import load_report, parse_report

AUTOFIX = "semgrep/autofix.dryrun.results.json"
TRACES = "semgrep/dataflow-traces.results.json"
CI_DIFF = "semgrep-ci/diff-scan-autofix/003-POST-api_agent_scans_4242_results.body.json"
CI_FULL = "semgrep-ci/full-scan-no-autofix/005-POST-api_agent_scans_4242_results.body.json"


# --------------------------------------------------------------------------- semgrep scan --json


def test_autofix_fixture_findings(read_fixture):
    report = parse_report(read_fixture(AUTOFIX), source="autofix.json")
    assert (report.tool, report.format, report.errors) == ("semgrep", "semgrep", ())
    first, second = report.findings
    assert first.rule_id == "rules.autofix.use-dict-get"
    assert first.path == "targets/autofix/autofix.py"
    assert (first.start_line, first.start_col, first.end_line, first.end_col) == (5, 3, 5, 12)
    assert first.severity == "error"
    assert first.message == "Use `.get()` method to avoid a KeyNotFound error"
    assert first.snippet == "  inputs[x] = 1"
    assert first.fix == Fix(5, 5, ("  inputs.get(x) = 1",))
    assert first.tool_ids == {"semgrep.fingerprint": "0x42"}
    assert first.fingerprint is None
    assert (second.start_line, second.start_col, second.end_col) == (6, 6, 19)
    assert second.snippet == "  if inputs[x + 1] == True:"
    assert second.fix == Fix(6, 6, ("  if inputs.get((x + 1)) == True:",))


def test_fix_spliced_from_fix_and_lines_matches_semgreps_fixed_lines(read_fixture):
    """Without `fixed_lines`, splicing `fix` into `lines` by columns must give what Semgrep gave."""
    data = read_fixture(AUTOFIX)
    expected = [r["extra"]["fixed_lines"] for r in data["results"]]
    for r in data["results"]:
        del r["extra"]["fixed_lines"]
    fixes = [f.fix for f in parse_report(data).findings]
    assert [list(f.lines) for f in fixes] == expected
    assert [(f.start_line, f.end_line) for f in fixes] == [(5, 5), (6, 6)]


def test_dataflow_fixture(read_fixture):
    (finding,) = parse_report(read_fixture(TRACES)).findings
    assert finding.rule_id == "rules.taint-trace"
    assert finding.path == "targets/taint/taint_trace.cpp"
    assert (finding.start_line, finding.start_col, finding.end_line, finding.end_col) == (17, 10, 17, 14)
    assert finding.severity == "warning"
    assert finding.message == "found an error"
    assert finding.snippet == "    SINK(res2);                               // (5) sink res2"
    assert finding.metadata == {"interfile": True}
    assert finding.fix is None


def _one_result(**extra: object) -> dict:
    base = {
        "check_id": "rules.x",
        "path": "src/a.py",
        "start": {"line": 2, "col": 5, "offset": 0},
        "end": {"line": 3, "col": 5, "offset": 0},
        "extra": {"message": "msg", "severity": "WARNING", "metadata": {}, "lines": "    foo(\n  1)"},
    }
    base["extra"].update(extra)
    return {"results": [base], "errors": [], "version": "1.0"}


def test_is_ignored_results_are_dropped():
    data = _one_result()
    data["results"].append(copy.deepcopy(data["results"][0]))
    data["results"][1]["extra"]["is_ignored"] = True
    assert len(parse_report(data).findings) == 1


def test_requires_login_placeholders_mean_absent():
    (f,) = parse_report(_one_result(lines="requires login", fingerprint="requires login", fix="bar()")).findings
    assert f.snippet is None
    assert f.tool_ids == {}
    assert f.fix is None  # nothing to splice into


@pytest.mark.parametrize(
    ("word", "severity"),
    [("ERROR", "error"), ("CRITICAL", "error"), ("HIGH", "error"), ("WARNING", "warning"), ("MEDIUM", "warning"),
     ("LOW", "info"), ("INFO", "info"), ("EXPERIMENT", "info"), ("INVENTORY", "info"), ("bogus", "warning")],
)
def test_severity_words(word, severity):
    assert parse_report(_one_result(severity=word)).findings[0].severity == severity


def test_metadata_strings_or_lists_become_rule_info():
    meta = {
        "cwe": "CWE-89: SQL Injection",
        "owasp": ["A03:2021 - Injection", "A01:2017 - Injection"],
        "category": "security",
        "references": "https://example.com/ref",
        "technology": ["flask"],
        "confidence": "HIGH",
        "source": "https://semgrep.dev/r/rules.x",
        "dev.semgrep.actions": ["block"],
    }
    (f,) = parse_report(_one_result(metadata=meta)).findings
    assert f.rule.cwe == ("CWE-89: SQL Injection",)
    assert f.rule.owasp == ("A03:2021 - Injection", "A01:2017 - Injection")
    assert f.rule.category == "security"
    assert f.rule.references == ("https://example.com/ref",)
    assert f.rule.technology == ("flask",)
    assert f.rule.confidence == "HIGH"
    assert f.rule.help_uri == "https://semgrep.dev/r/rules.x"
    assert f.metadata["dev.semgrep.actions"] == ["block"]


def test_multiline_fix_is_spliced_into_whole_lines():
    (f,) = parse_report(_one_result(fix="bar(2)")).findings
    assert f.snippet == "    foo(\n  1)"
    assert f.fix == Fix(2, 3, ("    bar(2)",))


def test_fix_whose_columns_do_not_fit_the_lines_is_dropped():
    (f,) = parse_report(_one_result(fix="bar()", lines="x\ny")).findings
    assert f.fix is None


def test_snippet_with_the_wrong_number_of_lines_is_not_trusted():
    (f,) = parse_report(_one_result(lines="only one line", fix="bar()")).findings
    assert (f.snippet, f.fix) == (None, None)


def test_errors_become_short_lines():
    data = _one_result()
    data["errors"] = [
        {"code": 3, "level": "warn", "type": ["PartialParsing", [{"path": "x"}]], "message": "Syntax error\nmore",
         "path": "src/b.py"},
        {"level": "error", "type": "Timeout", "message": "x" * 1000},
    ]
    errors = parse_report(data).errors
    assert errors[0] == "warn: PartialParsing in src/b.py: Syntax error"
    assert errors[1].startswith("error: Timeout: xxx") and len(errors[1]) <= 300


def test_absolute_paths_are_made_relative_to_the_root():
    data = _one_result()
    data["results"][0]["path"] = "/home/ci/checkout/src/a.py"
    assert parse_report(data, root="/home/ci/checkout").findings[0].path == "src/a.py"
    with pytest.raises(ReportError) as err:
        parse_report(data, source="scan.json")
    assert err.value.pointer == "/results/0/path"
    assert "scan.json" in str(err.value) and "absolute" in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "pointer", "words"),
    [
        (lambda r: r.pop("check_id"), "/results/0/check_id", "check_id"),
        (lambda r: r["start"].update(line=0), "/results/0/start/line", "line number"),
        (lambda r: r["end"].update(line=1), "/results/0", "before its start line"),
        (lambda r: r.update(path="../../etc/passwd"), "/results/0/path", "escapes the repository"),
        (lambda r: r.update(path="src/\x00a.py"), "/results/0/path", "NUL"),
        (lambda r: r.update(extra=[]), "/results/0/extra", "object"),
        (lambda r: r.update(end={"line": 2, "col": 1}), "/results/0", "before its start column"),
    ],
)
def test_lies_raise_report_error_with_pointer(mutate, pointer, words):
    data = _one_result()
    data["results"].append(copy.deepcopy(data["results"][0]))
    mutate(data["results"][0])
    with pytest.raises(ReportError) as err:
        parse_report(data)
    assert err.value.pointer == pointer
    assert words in str(err.value)


def test_results_item_that_is_not_an_object():
    with pytest.raises(ReportError) as err:
        parse_report({"results": ["nope"]})
    assert "not Semgrep JSON or SARIF 2.1.0" in str(err.value)


# --------------------------------------------------------------------------- semgrep ci results body


def test_ci_diff_scan_every_finding_matches_the_upload(read_fixture):
    raw = read_fixture(CI_DIFF)
    report = parse_report(raw, source="results.json")
    assert (report.tool, report.format, len(report.findings)) == ("semgrep", "semgrep", 15)
    severity = {0: "info", 1: "warning", 2: "error"}
    for item, f in zip(raw["findings"], report.findings, strict=True):
        assert (f.rule_id, f.path) == (item["check_id"], item["path"])
        assert (f.start_line, f.end_line) == (item["line"], item["end_line"])
        assert (f.start_col, f.end_col) == (item["column"], item["end_column"])
        assert f.severity == severity[item["severity"]]
        assert f.message == item["message"]
        assert f.snippet is None
        assert f.tool_ids == {"semgrep.syntactic_id": item["syntactic_id"],
                              "semgrep.match_based_id": item["match_based_id"]}
        assert (f.fix is not None) == ("fixed_lines" in item)


def test_ci_diff_scan_specific_values(read_fixture):
    findings = parse_report(read_fixture(CI_DIFF)).findings
    fixes = [f for f in findings if f.fix]
    assert len(fixes) == 4
    timeout = next(f for f in fixes if f.path == "utils/generate_bad_passwords.py")
    assert timeout.rule_id == "python.requests.best-practice.use-timeout.use-timeout"
    assert timeout.fix == Fix(21, 21, ("    with requests.get(url, stream=True, timeout=30) as r:",))
    http = findings[0]
    assert http.rule_id.endswith("request-with-http.request-with-http")
    assert (http.path, http.start_line, http.severity) == ("bad/api_post.py", 30, "info")
    assert http.rule.cwe == ("CWE-319: Cleartext Transmission of Sensitive Information",)
    assert http.rule.owasp == ("A03:2017 - Sensitive Data Exposure", "A02:2021 - Cryptographic Failures")
    assert (http.rule.category, http.rule.confidence) == ("security", "MEDIUM")
    assert http.rule.technology == ("requests",)
    sqlalchemy = findings[-1]
    assert sqlalchemy.rule_id.endswith("sqlalchemy-execute-raw-query")
    assert (sqlalchemy.path, sqlalchemy.start_line, sqlalchemy.severity) == ("good/libuser.py", 61, "error")
    csrf = next(f for f in findings if f.rule_id.endswith("django-no-csrf-token"))
    assert (csrf.start_line, csrf.end_line) == (8, 18)
    assert len(csrf.rule.cwe) == 1 and csrf.rule.cwe[0].startswith("CWE-352")


def test_ci_full_scan(read_fixture):
    raw = read_fixture(CI_FULL)
    findings = parse_report(raw).findings
    assert len(findings) == 79
    assert all(f.fix is None for f in findings)
    assert Counter(f.severity for f in findings) == Counter(
        {0: "info", 1: "warning", 2: "error"}[x["severity"]] for x in raw["findings"]
    )
    assert [(f.path, f.start_line) for f in findings] == [(x["path"], x["line"]) for x in raw["findings"]]
    jwt = next(f for f in findings if f.rule_id.endswith("jwt-python-hardcoded-secret"))
    jwt_place = (jwt.path, jwt.start_line, jwt.start_col, jwt.end_col, jwt.severity)
    assert jwt_place == ("good/libapi.py", 24, 12, 18, "error")
    debug = next(f for f in findings if f.rule_id.endswith("debug-enabled.debug-enabled"))
    assert len(debug.rule.owasp) == 1  # a plain string in this rule's metadata


def test_ci_body_with_no_findings_and_ci_keys(read_fixture):
    raw = read_fixture(CI_FULL)
    raw["findings"] = []
    report = load_report(json.dumps(raw).encode())
    assert (report.format, report.findings) == ("semgrep", ())


def test_ci_finding_with_bad_line_is_refused(read_fixture):
    raw = read_fixture(CI_DIFF)
    raw["findings"][2]["end_line"] = 1
    with pytest.raises(ReportError) as err:
        parse_report(raw)
    assert err.value.pointer == "/findings/2"

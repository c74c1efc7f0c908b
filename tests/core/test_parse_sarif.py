"""SARIF 2.1.0: real CodeQL and Semgrep logs, hand-made edge cases, and logs that lie."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import validators

from forge_app.core.models import Fix, ReportError
from forge_app.core.parsing import load_report, parse_report
from forge_app.core.parsing.common import compile_schema_checker
from forge_app.core.parsing.sarif import _fast_checkers, sarif_schema, validate_sarif

EXAMPLES = "sarif/examples/"


# --------------------------------------------------------------------------- real logs


def test_codeql_valid_sarif_two_runs(read_fixture):
    report = parse_report(read_fixture(EXAMPLES + "codeql-action.valid-sarif.sarif"), source="x.sarif")
    assert report.format == "sarif"
    assert report.tool == "LGTM.com, CodeQL command-line toolchain"
    assert report.errors == ()
    lgtm, codeql, new = report.findings
    assert (lgtm.tool, codeql.tool) == ("LGTM.com", "CodeQL command-line toolchain")
    for f in (lgtm, codeql):
        assert f.rule_id == "js/unused-local-variable"
        assert (f.path, f.start_line, f.end_line, f.start_col, f.end_col) == ("main.js", 2, 2, 7, 10)
        assert f.message == "Unused variable foo."
        assert f.severity == "info"  # rule defaultConfiguration.level "note"
        assert f.tool_ids == {"sarif.primaryLocationLineHash": "39fa2ee980eb94b0:1",
                              "sarif.primaryLocationStartColumnFingerprint": "4"}
        assert f.rule.confidence == "very-high"
        assert f.metadata["problem.severity"] == "recommendation"
        assert f.snippet is None and f.fix is None
    assert new.rule_id == "js/inconsistent-use-of-new"
    assert (new.path, new.start_line, new.start_col, new.end_col) == ("src/promiseUtils.js", 2, None, None)
    assert new.message.startswith("Function resolvingPromise is sometimes invoked as a constructor")
    assert new.metadata["tags"] == ["reliability", "correctness", "language-features"]


def test_codeql_file_level_result_and_uri_index_disagreement(read_fixture):
    """No region: placed on line 1. Its uri and artifacts[index] disagree: the uri wins, with a note."""
    report = parse_report(read_fixture(EXAMPLES + "codeql-action.fingerprinting2.input.sarif"))
    (f,) = report.findings
    assert f.rule_id == "cpp/missing-header-guard"
    assert f.path == "no_header_guard.h"
    assert (f.start_line, f.end_line, f.start_col) == (1, 1, None)
    assert f.message == "This header file should contain a header guard to prevent multiple inclusion."
    assert f.severity == "warning"  # empty defaultConfiguration: SARIF's default
    assert f.rule.confidence == "high"
    assert f.tool_ids == {}
    assert len(report.errors) == 1 and "differs from run.artifacts[index]" in report.errors[0]


def test_semgrep_sarif_with_autofix(read_fixture):
    report = parse_report(read_fixture(EXAMPLES + "semgrep.with-autofix.sarif"))
    assert report.tool == "Semgrep OSS"
    first, second = report.findings
    assert first.rule_id == "rules.autofix.use-dict-get"
    assert (first.path, first.start_line, first.start_col, first.end_col) == ("targets/autofix/autofix.py", 5, 3, 12)
    assert first.severity == "error"
    assert first.snippet == "  inputs[x] = 1"
    assert first.fix == Fix(5, 5, ("  inputs.get(x) = 1",))
    assert first.tool_ids["sarif.matchBasedId/v1"].startswith("4a33397409b7b2d0")
    assert second.snippet == "  if inputs[x + 1] == True:"
    assert second.fix == Fix(6, 6, ("  if inputs.get((x + 1)) == True:",))


def test_semgrep_sarif_autofix_is_detected_without_trusting_the_tool_name(read_fixture):
    """Renamed tool: the whole-line insertedContent must still be recognised from the snippet."""
    data = read_fixture(EXAMPLES + "semgrep.with-autofix.sarif")
    data["runs"][0]["tool"]["driver"]["name"] = "Some Tool"
    for res in data["runs"][0]["results"]:  # a snippet that starts at column 1 is whole lines for any tool
        region = res["locations"][0]["physicalLocation"]["region"]
        res["locations"][0]["physicalLocation"]["contextRegion"] = {"startLine": region["startLine"],
                                                                     "snippet": region["snippet"]}
    fixes = [f.fix for f in parse_report(data).findings]
    assert fixes == [Fix(5, 5, ("  inputs.get(x) = 1",)), Fix(6, 6, ("  if inputs.get((x + 1)) == True:",))]


def test_semgrep_sarif_with_dataflow_traces(read_fixture):
    (f,) = parse_report(read_fixture(EXAMPLES + "semgrep.with-dataflow-traces.sarif")).findings
    assert f.rule_id == "rules.classic"
    assert (f.path, f.start_line, f.end_line, f.start_col, f.end_col) == ("targets/taint/taint.py", 9, 9, 5, 13)
    assert f.message == "A user input source() went into a dangerous sink()"
    assert f.severity == "warning"
    assert f.snippet == "    sink1(b)"
    assert f.metadata == {"precision": "very-high", "tags": []}


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("mutate", "pointer", "words"),
    [
        (lambda log: log["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"].update(startLine=0),
         "/runs/0/results/1/locations/0/physicalLocation/region/startLine", "minimum of 1"),
        (lambda log: log["runs"][0]["results"][1].pop("message"), "/runs/0/results/1", "'message' is a required"),
        (lambda log: log["runs"][0]["results"][0].update(level="fatal"), "/runs/0/results/0/level", "'fatal'"),
        (lambda log: log["runs"][0]["tool"]["driver"].pop("name"), "/runs/0/tool/driver", "'name' is a required"),
        (lambda log: log["runs"][0].update(artifacts=[{"location": {"uri": 7}}]), "/runs/0/artifacts/0/location/uri",
         "not of type 'string'"),
    ],
)
def test_schema_violations_name_the_instance(read_fixture, mutate, pointer, words):
    log = read_fixture(EXAMPLES + "semgrep.with-autofix.sarif")
    mutate(log)
    with pytest.raises(ReportError) as err:
        parse_report(log, source="scan.sarif")
    assert err.value.pointer == pointer
    assert words in str(err.value)
    assert str(err.value).startswith("scan.sarif: not valid SARIF 2.1.0:")


def _mutations(doc: Any) -> list[tuple[list[Any], Any]]:
    """Every (path, value) in a JSON document, for picking a place to break."""
    out: list[tuple[list[Any], Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        out.append((path, node))
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(doc, [])
    return out


_FIXTURE_LOGS = ["codeql-action.valid-sarif.sarif", "semgrep.with-autofix.sarif",
                 "semgrep.with-dataflow-traces.sarif", "codeql-action.fingerprinting2.input.sarif"]
_JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.just(1.0), st.text(max_size=3),
                         st.just([]), st.just({}), st.just({"text": "t"}), st.just({"startLine": 1}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(_FIXTURE_LOGS), pick=st.integers(0, 10_000), value=_JSON_VALUES,
       action=st.sampled_from(["replace", "nudge", "delete", "add", "duplicate"]))
def test_fast_checker_agrees_with_jsonschema(read_fixture, name, pick, value, action):
    """The generated checker must say "valid" exactly when jsonschema does, on broken real logs."""
    doc = read_fixture(EXAMPLES + name)
    places = _mutations(doc)
    path, node = places[pick % len(places)]
    if path:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if action == "replace":
            parent[path[-1]] = value
        elif action == "nudge":  # same type, edge value: reaches minimum/enum/pattern checks
            parent[path[-1]] = {int: -2 if pick % 2 else 0, str: "zz"}.get(type(node), value)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(node))
    if action == "add" and isinstance(node, dict):
        node["extraProperty"] = value
    check_log, _ = _fast_checkers()
    reference = validators.validator_for(sarif_schema())(sarif_schema())
    assert check_log(doc) == reference.is_valid(doc)


@pytest.mark.parametrize(
    ("schema", "instances"),
    [
        ({"type": "integer", "minimum": 1}, [1, 0, 1.0, True, "1", None]),
        ({"type": ["array", "null"], "uniqueItems": True},
         [[1, 1.0], [1, True], [{"a": [1]}, {"a": [1]}], None, [0, False]]),
        ({"enum": [1, "a", None]}, [1, 1.0, True, "a", None, "b"]),
        ({"type": "string", "pattern": "[0-9]+"}, ["a1", "ab", 5]),
        ({"properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
         [{"a": "x"}, {"a": 1}, {}, {"a": "x", "b": 1}, [], "s"]),
        ({"additionalProperties": {"type": "string"}, "properties": {"n": {"type": "number"}}},
         [{"x": "s", "n": 2.5}, {"x": 1}, {"n": "s"}]),
        ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"a": 1, "b": 2}, {}, 3]),
        ({"anyOf": [{"type": "string"}, {"type": "integer", "maximum": 3}]}, ["s", 3, 4, None]),
        ({"type": "array", "items": {"$ref": "#/definitions/node"}, "minItems": 1,
          "definitions": {"node": {"type": "object", "properties": {"kids": {"$ref": "#"}}}}},
         [[{}], [], [{"kids": [{}]}], [{"kids": []}], [{"kids": [1]}]]),
    ],
)
def test_schema_checker_matches_jsonschema_semantics(schema, instances):
    """Draft-04 corners: 1.0 is not an integer, true is not 1, uniqueness is JSON equality, $ref cycles."""
    checker = compile_schema_checker({"$schema": "http://json-schema.org/draft-04/schema#", **schema})
    reference = validators.Draft4Validator(schema)
    assert [checker(x) for x in instances] == [reference.is_valid(x) for x in instances]


def test_schema_checker_refuses_unknown_keywords():
    with pytest.raises(ValueError, match="not supported"):
        compile_schema_checker({"type": "string", "minLength": 2})


# --------------------------------------------------------------------------- logs that lie


def _region(log: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return log["runs"][0]["results"][i]["locations"][0]["physicalLocation"]["region"]


def test_end_line_before_start_line(sarif_log, sarif_result):
    log = sarif_log([sarif_result(start_line=5, endLine=4)])
    with pytest.raises(ReportError) as err:
        parse_report(log)
    assert err.value.pointer == "/runs/0/results/0/locations/0/physicalLocation/region"
    assert "endLine 4 is before startLine 5" in str(err.value)


def test_end_column_before_start_column_on_one_line(sarif_log, sarif_result):
    with pytest.raises(ReportError, match="endColumn 2 is before startColumn 5"):
        parse_report(sarif_log([sarif_result(startColumn=5, endColumn=2)]))


def test_rule_index_out_of_range(sarif_log, sarif_result):
    res = sarif_result()
    res["ruleIndex"] = 3
    with pytest.raises(ReportError) as err:
        parse_report(sarif_log([res], rules=[{"id": "r1"}]))
    assert err.value.pointer == "/runs/0/results/0/ruleIndex"
    assert "rule index 3 is out of range" in str(err.value)


def test_rule_id_contradicting_rule_index(sarif_log, sarif_result):
    res = sarif_result(rule_id="other")
    res["ruleIndex"] = 0
    with pytest.raises(ReportError, match="contradicts rules\\[0\\]"):
        parse_report(sarif_log([res], rules=[{"id": "r1"}]))


def test_tool_component_index_out_of_range(sarif_log, sarif_result):
    res = sarif_result()
    res["rule"] = {"index": 0, "toolComponent": {"index": 2}}
    with pytest.raises(ReportError) as err:
        parse_report(sarif_log([res]))
    assert err.value.pointer == "/runs/0/results/0/rule/toolComponent/index"


def test_artifact_index_out_of_range(sarif_log, sarif_result):
    res = sarif_result()
    res["locations"][0]["physicalLocation"]["artifactLocation"] = {"index": 2}
    with pytest.raises(ReportError) as err:
        parse_report(sarif_log([res], artifacts=[{"location": {"uri": "a.py"}}]))
    assert err.value.pointer == "/runs/0/results/0/locations/0/physicalLocation/artifactLocation/index"
    assert "artifact index 2 is out of range" in str(err.value)


def test_artifact_index_resolves_the_uri_and_its_base(sarif_log, sarif_result):
    res = sarif_result()
    res["locations"][0]["physicalLocation"]["artifactLocation"] = {"index": 1}
    log = sarif_log([res], artifacts=[{"location": {"uri": "a.py"}},
                                      {"location": {"uri": "b%20c.py", "uriBaseId": "SRC"}}],
                    originalUriBaseIds={"SRC": {"uri": "lib/"}})
    assert parse_report(log).findings[0].path == "lib/b c.py"


@pytest.mark.parametrize(
    "uri",
    ["../../etc/passwd", "src/../../x.py", "file:///etc/passwd", "/etc/passwd", "C:/Windows/x.py",
     "https://example.com/x.py", "src/%00.py"],
)
def test_uris_outside_the_repository_are_refused(sarif_log, sarif_result, uri):
    with pytest.raises(ReportError) as err:
        parse_report(sarif_log([sarif_result(uri=uri)]), source="s.sarif")
    assert err.value.pointer == "/runs/0/results/0/locations/0/physicalLocation/artifactLocation"
    assert str(err.value).startswith("s.sarif: ")


def test_absolute_uri_under_a_known_base_or_root(sarif_log, sarif_result):
    bases = {"%SRCROOT%": {"uri": "file:///home/runner/work/r/r/"}}
    log = sarif_log([sarif_result(uri="file:///home/runner/work/r/r/src/x.py")], originalUriBaseIds=bases)
    assert parse_report(log).findings[0].path == "src/x.py"
    log = sarif_log([sarif_result(uri="file:///ci/checkout/src/x.py")])
    assert parse_report(log, root="/ci/checkout").findings[0].path == "src/x.py"
    assert parse_report(log, root="file:///ci/checkout/").findings[0].path == "src/x.py"


def test_uri_base_id_chains(sarif_log, sarif_result):
    res = sarif_result(uri="x.py")
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] = "PKG"
    bases = {"ROOT": {"uri": "file:///work/repo/"}, "SRC": {"uri": "services/api", "uriBaseId": "ROOT"},
             "PKG": {"uri": "pkg/", "uriBaseId": "SRC"}}
    log = sarif_log([res], originalUriBaseIds=bases)
    assert parse_report(log).findings[0].path == "services/api/pkg/x.py"
    # with the checkout root known, an absolute base below it keeps its place in the repository
    bases["ROOT"] = {"uri": "file:///work/repo/services/"}
    bases["SRC"] = {"uri": "api/", "uriBaseId": "ROOT"}
    assert parse_report(log, root="/work/repo").findings[0].path == "services/api/pkg/x.py"
    # a checkout elsewhere: the log's own absolute base is taken as the repository root
    assert parse_report(log, root="/elsewhere").findings[0].path == "api/pkg/x.py"


def test_uri_base_id_cycle(sarif_log, sarif_result):
    res = sarif_result(uri="x.py")
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] = "A"
    log = sarif_log([res], originalUriBaseIds={"A": {"uri": "a/", "uriBaseId": "B"},
                                               "B": {"uri": "b/", "uriBaseId": "A"}})
    with pytest.raises(ReportError, match="refers to itself"):
        parse_report(log)


def test_undefined_uri_base_id_is_the_repository_root(sarif_log, sarif_result):
    res = sarif_result(uri="./src\\win.py")
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] = "%SRCROOT%"
    assert parse_report(sarif_log([res])).findings[0].path == "src/win.py"


# --------------------------------------------------------------------------- rules, levels, messages


def test_levels(sarif_log, sarif_result):
    results = [sarif_result(rule_id=r) for r in ("r1", "r2", "r3", "r4")]
    results[0]["level"] = "none"
    results[1]["level"] = "error"
    rules = [{"id": "r1"}, {"id": "r2", "defaultConfiguration": {"level": "note"}},
             {"id": "r3", "defaultConfiguration": {"level": "error"}}, {"id": "r4"}]
    assert [f.severity for f in parse_report(sarif_log(results, rules=rules)).findings] == [
        "info", "error", "error", "warning"]


def test_messages_from_message_strings_and_short_description(sarif_log, sarif_result):
    results = [sarif_result(rule_id="r1"), sarif_result(rule_id="r1"), sarif_result(rule_id="r2")]
    results[0]["message"] = {"id": "default", "arguments": ["x", "y"]}
    results[1]["message"] = {"id": "global"}
    results[2]["message"] = {"id": "missing"}
    rules = [{"id": "r1", "messageStrings": {"default": {"text": "{0} flows to {1} {{literally}} {7}"}}},
             {"id": "r2", "shortDescription": {"text": "Short words"}}]
    log = sarif_log(results, rules=rules)
    log["runs"][0]["tool"]["driver"]["globalMessageStrings"] = {"global": {"text": "from the tool"}}
    assert [f.message for f in parse_report(log).findings] == [
        "x flows to y {literally} {7}", "from the tool", "Short words"]


def test_rules_in_extensions_and_semgrep_tags(sarif_log, sarif_result):
    res = sarif_result(rule_id="py/sql-injection")
    res["rule"] = {"id": "py/sql-injection", "index": 0, "toolComponent": {"index": 0}}
    plain = sarif_result(rule_id="python.sqli")
    log = sarif_log([res, plain], rules=[{
        "id": "python.sqli", "helpUri": "https://semgrep.dev/r/python.sqli",
        "properties": {"precision": "very-high", "dev.semgrep.actions": ["block"],
                       "tags": ["CWE-89: Improper Neutralization of Special Elements used in an SQL Command",
                                "HIGH CONFIDENCE", "OWASP-A03:2021 - Injection", "security"]}}])
    log["runs"][0]["tool"]["extensions"] = [{"name": "codeql/python-queries", "rules": [
        {"id": "py/sql-injection", "properties": {"tags": ["security", "external/cwe/cwe-089"]}}]}]
    codeql, semgrep = parse_report(log).findings
    assert codeql.rule.cwe == ("CWE-89",)
    assert codeql.rule.category == "security"
    assert semgrep.rule.cwe == ("CWE-89: Improper Neutralization of Special Elements used in an SQL Command",)
    assert semgrep.rule.owasp == ("A03:2021 - Injection",)
    assert semgrep.rule.confidence == "HIGH"
    assert semgrep.rule.help_uri == "https://semgrep.dev/r/python.sqli"
    assert semgrep.metadata["dev.semgrep.actions"] == ["block"]


def test_rule_found_by_id_in_an_extension(sarif_log, sarif_result):
    log = sarif_log([sarif_result(rule_id="ext/rule")])
    log["runs"][0]["tool"]["extensions"] = [{"name": "pack", "rules": [
        {"id": "ext/rule", "defaultConfiguration": {"level": "error"}}]}]
    assert parse_report(log).findings[0].severity == "error"


# --------------------------------------------------------------------------- what is not reported


def test_suppressed_pass_absent_and_locationless_results(sarif_log, sarif_result):
    results = [sarif_result(start_line=n) for n in range(1, 8)]
    results[0]["suppressions"] = [{"kind": "inSource"}]
    results[1]["suppressions"] = [{"kind": "external", "status": "accepted"}]
    results[2]["suppressions"] = [{"kind": "external", "status": "rejected"}]  # still reported
    results[3]["kind"] = "pass"
    results[4]["baselineState"] = "absent"
    results[5]["locations"] = []
    results[6]["locations"][0]["physicalLocation"]["region"] = {"charOffset": 10}
    report = parse_report(sarif_log(results))
    assert [f.start_line for f in report.findings] == [3]
    assert report.errors == ("run 0: 1 result(s) without a physical location were skipped",
                             "run 0: 1 result(s) with only a character/byte offset region were skipped")


def test_tool_notifications_become_errors(sarif_log, sarif_result):
    log = sarif_log([sarif_result()], invocations=[{
        "executionSuccessful": False,
        "toolExecutionNotifications": [{"level": "error", "message": {"text": "Syntax error in a.py\nmore"}},
                                       {"level": "note", "message": {"text": "fyi"}}]}])
    assert parse_report(log).errors == ("the tool reported that its execution was not successful",
                                        "error: Syntax error in a.py")


# --------------------------------------------------------------------------- snippets and fixes


def test_context_region_gives_whole_line_snippet(sarif_log, sarif_result):
    res = sarif_result(start_line=3, startColumn=5, endColumn=8, snippet={"text": "bar"})
    res["locations"][0]["physicalLocation"]["contextRegion"] = {
        "startLine": 2, "endLine": 4, "snippet": {"text": "def f():\n    bar(1)\n    return\n"}}
    assert parse_report(sarif_log([res])).findings[0].snippet == "    bar(1)"


def test_column_exact_region_snippet_is_not_taken_for_lines(sarif_log, sarif_result):
    res = sarif_result(start_line=3, startColumn=5, endColumn=8, snippet={"text": "bar"})
    assert parse_report(sarif_log([res])).findings[0].snippet is None
    res = sarif_result(start_line=3, startColumn=5, endColumn=8, snippet={"text": "    bar(1)"})
    assert parse_report(sarif_log([res])).findings[0].snippet == "    bar(1)"


def _with_fix(res: dict[str, Any], *replacements: dict[str, Any], uri: str | None = None) -> dict[str, Any]:
    location = res["locations"][0]["physicalLocation"]["artifactLocation"]
    res["fixes"] = [{"artifactChanges": [{"artifactLocation": {"uri": uri or location["uri"]},
                                          "replacements": list(replacements)}]}]
    return res


def test_codeql_style_column_exact_fix(sarif_log, sarif_result):
    res = sarif_result(start_line=7, startColumn=9, endColumn=20, snippet={"text": "    x = eval(user_input)"})
    res["locations"][0]["physicalLocation"]["region"]["startColumn"] = 1  # snippet starts the line
    _with_fix(res, {"deletedRegion": {"startLine": 7, "startColumn": 9, "endColumn": 13},
                    "insertedContent": {"text": "ast.literal_eval"}})
    (f,) = parse_report(sarif_log([res])).findings
    assert f.fix == Fix(7, 7, ("    x = ast.literal_eval(user_input)",))


def test_several_replacements_and_a_line_insertion(sarif_log, sarif_result):
    res = sarif_result(start_line=10, endLine=11, snippet={"text": "a = f(1)\nb = f(2)\n"})
    _with_fix(res,
              {"deletedRegion": {"startLine": 11, "startColumn": 5, "endColumn": 6}, "insertedContent": {"text": "g"}},
              {"deletedRegion": {"startLine": 10, "startColumn": 5, "endColumn": 6}, "insertedContent": {"text": "g"}},
              {"deletedRegion": {"startLine": 10, "startColumn": 1, "endColumn": 1},
               "insertedContent": {"text": "import g\n"}})
    (f,) = parse_report(sarif_log([res])).findings
    assert f.fix == Fix(10, 11, ("import g", "a = g(1)", "b = g(2)"))


def test_whole_line_replacements_need_no_snippet(sarif_log, sarif_result):
    res = _with_fix(sarif_result(start_line=4), {"deletedRegion": {"startLine": 4},
                                                 "insertedContent": {"text": "fixed()\n"}})
    assert parse_report(sarif_log([res])).findings[0].fix == Fix(4, 4, ("fixed()",))
    res = _with_fix(sarif_result(start_line=4), {"deletedRegion": {"startLine": 4, "startColumn": 1, "endLine": 6,
                                                                   "endColumn": 1}})
    assert parse_report(sarif_log([res])).findings[0].fix == Fix(4, 5, ())


def test_column_exact_fix_without_snippet_is_dropped(sarif_log, sarif_result):
    res = _with_fix(sarif_result(start_line=4, startColumn=3, endColumn=6),
                    {"deletedRegion": {"startLine": 4, "startColumn": 3, "endColumn": 6},
                     "insertedContent": {"text": "x"}})
    assert parse_report(sarif_log([res])).findings[0].fix is None


def test_fix_for_another_file_is_ignored(sarif_log, sarif_result):
    res = _with_fix(sarif_result(start_line=4), {"deletedRegion": {"startLine": 4},
                                                 "insertedContent": {"text": "x"}}, uri="other.py")
    assert parse_report(sarif_log([res])).findings[0].fix is None


def test_fix_region_that_ends_before_it_starts(sarif_log, sarif_result):
    res = _with_fix(sarif_result(start_line=4), {"deletedRegion": {"startLine": 4, "endLine": 2},
                                                 "insertedContent": {"text": "x"}})
    with pytest.raises(ReportError) as err:
        parse_report(sarif_log([res]))
    assert err.value.pointer == "/runs/0/results/0/fixes/0/artifactChanges/0/replacements/0/deletedRegion"


def test_utf16_columns_in_fixes(sarif_log, sarif_result):
    """CodeQL counts UTF-16 code units: an emoji before the match shifts columns by two."""
    res = sarif_result(start_line=1, snippet={"text": 's = "😀" + bad()'})
    _with_fix(res, {"deletedRegion": {"startLine": 1, "startColumn": 12, "endColumn": 15},
                    "insertedContent": {"text": "good"}})
    (f,) = parse_report(sarif_log([res], columnKind="utf16CodeUnits")).findings
    assert f.fix == Fix(1, 1, ('s = "😀" + good()',))


# --------------------------------------------------------------------------- size


def _big_log(n: int) -> dict[str, Any]:
    rules = [{"id": f"py/rule-{i}", "shortDescription": {"text": "s"}, "defaultConfiguration": {"level": "warning"},
              "properties": {"tags": ["security", "external/cwe/cwe-079"], "precision": "high"}} for i in range(50)]
    results = [{
        "ruleId": f"py/rule-{i % 50}", "ruleIndex": i % 50, "message": {"text": f"message {i}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": f"src/pkg{i % 100}/mod.py", "uriBaseId": "%SRCROOT%", "index": i % 100},
            "region": {"startLine": i % 500 + 1, "startColumn": 5, "endColumn": 20}}}],
        "partialFingerprints": {"primaryLocationLineHash": f"{i:016x}:1"},
    } for i in range(n)]
    return {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "CodeQL", "rules": rules}},
        "artifacts": [{"location": {"uri": f"src/pkg{i}/mod.py", "uriBaseId": "%SRCROOT%"}} for i in range(100)],
        "results": results}]}


def test_large_log_parses(capsys):
    """Correctness at size; the time is printed (run with -s), not asserted."""
    raw = json.dumps(_big_log(2000)).encode()
    start = time.process_time()
    report = load_report(raw)
    elapsed = time.process_time() - start
    assert len(report.findings) == 2000
    assert report.findings[1999].path == "src/pkg99/mod.py"
    assert report.findings[1999].rule.cwe == ("CWE-79",)
    with capsys.disabled():
        print(f"\n[sarif] 2,000 results: load+validate+parse {elapsed:.3f}s CPU")


def test_validate_sarif_accepts_every_example(read_fixture):
    for name in _FIXTURE_LOGS:
        validate_sarif(read_fixture(EXAMPLES + name), source=name)

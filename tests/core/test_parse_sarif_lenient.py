"""SARIF that breaks the schema only in descriptive, optional fields is accepted with a warning;
absolute file URIs are made relative to the root the upload names."""

from __future__ import annotations

import copy

import pytest

from forge_app.core.models import ReportError
from forge_app.core.parsing import parse_report

EXAMPLES = "sarif/examples/"


def _log(read_fixture):
    return copy.deepcopy(read_fixture(EXAMPLES + "semgrep.with-autofix.sarif"))


def test_a_null_fix_description_and_an_unknown_property_are_warnings(read_fixture):
    log = _log(read_fixture)
    strict = parse_report(copy.deepcopy(log))
    res = log["runs"][0]["results"][0]
    res["fixes"] = [{"description": {"text": None}, "artifactChanges": res["fixes"][0]["artifactChanges"]}] \
        if res.get("fixes") else [{"description": {"text": None}, "artifactChanges": []}]
    log["runs"][0]["results"][1]["colour"] = "red"
    log["runs"][0]["tool"]["driver"]["rules"][0]["fullDescription"] = {"text": None}
    report = parse_report(log, source="ruff.sarif")
    assert [f.rule_id for f in report.findings] == [f.rule_id for f in strict.findings]
    assert [(f.path, f.start_line) for f in report.findings] == [(f.path, f.start_line) for f in strict.findings]
    joined = "\n".join(report.errors)
    assert "/runs/0/results/0/fixes/0/description: ignored: None is not of type 'string'" in joined
    assert "/runs/0/results/1: ignored unknown property colour" in joined
    assert "fullDescription" in joined and all(e.startswith("ruff.sarif: ") for e in report.errors)


@pytest.mark.parametrize("mutate, where", [
    (lambda log: log["runs"][0]["results"][0]["message"].update(text=None), "/runs/0/results/0/message"),
    (lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(startLine=None),
     "/runs/0/results/0/locations/0/physicalLocation/region/startLine"),
    (lambda log: log["runs"][0]["results"][0].update(ruleId=None), "/runs/0/results/0/ruleId"),
])
def test_what_identity_or_placement_needs_stays_strict(read_fixture, mutate, where):
    log = _log(read_fixture)
    mutate(log)
    with pytest.raises(ReportError) as err:
        parse_report(log, source="x.sarif")
    assert err.value.pointer.startswith(where)


def _absolute(read_fixture, root: str):
    log = _log(read_fixture)
    for res in log["runs"][0]["results"]:
        loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
        loc["uri"] = f"file://{root}/{loc['uri']}"
        loc.pop("uriBaseId", None)
    log["runs"][0].pop("originalUriBaseIds", None)
    return log


def test_absolute_file_uris_are_relative_to_the_named_root(read_fixture):
    strict = parse_report(_log(read_fixture))
    with pytest.raises(ReportError) as err:
        parse_report(_absolute(read_fixture, "/home/ci/work"))
    assert "root" in str(err.value)
    report = parse_report(_absolute(read_fixture, "/home/ci/work"), root="/home/ci/work")
    assert [f.path for f in report.findings] == [f.path for f in strict.findings]
    log = _absolute(read_fixture, "/home/ci/work")
    log["runs"][0]["originalUriBaseIds"] = {"SRCROOT": {"uri": "file:///home/ci/work/"}}
    assert [f.path for f in parse_report(log).findings] == [f.path for f in strict.findings]

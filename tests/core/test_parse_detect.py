"""Format detection, byte decoding, and repository paths (`normalize_path`)."""

from __future__ import annotations

import codecs
import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.core.models import ReportError
from forge_app.core.parsing import detect_format, load_report, parse_report
from forge_app.core.parsing.common import normalize_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVERY_REPORT = sorted(
    [*FIXTURES.glob("sarif/examples/*.sarif"), *FIXTURES.glob("semgrep/*.json"),
     *FIXTURES.glob("semgrep-ci/*/*results*.body.json")]
)
EXPECTED = {
    "codeql-action.fingerprinting2.input.sarif": ("sarif", 1),
    "codeql-action.valid-sarif.sarif": ("sarif", 3),
    "semgrep.with-autofix.sarif": ("sarif", 2),
    "semgrep.with-dataflow-traces.sarif": ("sarif", 1),
    "autofix.dryrun.results.json": ("semgrep", 2),
    "dataflow-traces.results.json": ("semgrep", 1),
    "003-POST-api_agent_scans_4242_results.body.json": ("semgrep-ci", 15),
    "005-POST-api_agent_scans_4242_results.body.json": ("semgrep-ci", 79),
}


def test_every_fixture_report_is_covered():
    assert sorted(p.name for p in EVERY_REPORT) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EVERY_REPORT, ids=lambda p: p.name)
def test_detect_and_load_every_fixture(path: Path):
    raw = path.read_bytes()
    kind, count = EXPECTED[path.name]
    assert detect_format(json.loads(raw)) == kind
    report = load_report(raw, source=path.name)
    assert len(report.findings) == count
    assert report.format == ("sarif" if kind == "sarif" else "semgrep")
    for f in report.findings:
        assert f.fingerprint is None
        assert f.severity in ("error", "warning", "info")
        assert not f.path.startswith("/") and ".." not in f.path.split("/")
        assert 1 <= f.start_line <= f.end_line
    # the same bytes with a UTF-8 BOM read the same
    assert load_report(codecs.BOM_UTF8 + raw) == report


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "the JSON is an array"),
        ("text", "the JSON is a string"),
        (None, "the JSON is null"),
        ({}, "empty object"),
        ({"results": [{"rule": "x"}]}, "not Semgrep results"),
        ({"findings": []}, "found keys 'findings'"),
        ({"version": "2.0.0", "runs": []}, "its SARIF version is '2.0.0'; only 2.1.0 is supported"),
        ({"runs": []}, "its SARIF version is None"),
        ({"issues": [], "a": 1}, "found keys 'issues', 'a'"),
    ],
)
def test_unknown_inputs_say_what_they_are(data, words):
    with pytest.raises(ReportError) as err:
        parse_report(data, source="upload.json")
    message = str(err.value)
    assert message.startswith("upload.json: not Semgrep JSON or SARIF 2.1.0: ")
    assert words in message


def test_empty_reports():
    assert parse_report({"results": [], "errors": []}).findings == ()
    report = parse_report({"version": "2.1.0", "runs": []})
    assert (report.format, report.tool, report.findings) == ("sarif", "unknown", ())


def test_malformed_json_names_line_and_column():
    with pytest.raises(ReportError) as err:
        load_report(b'{"results": [\n  {"check_id": "x",,}\n]}', source="bad.json")
    assert str(err.value) == ("bad.json: malformed JSON at line 2, column 20: "
                              "Expecting property name enclosed in double quotes")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\xff\xfe{\x00}\x00", "not UTF-8 text (it looks like UTF-16)"),
        (b'{"results": ["\xe9"]}', "not UTF-8 text: invalid byte at offset 14"),
        (gzip.compress(b"{}"), "gzip-compressed"),
        (b'{"results": [], "x": NaN}', "NaN is not a JSON number"),
        (b"", "malformed JSON at line 1, column 1"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_bytes(raw, words):
    with pytest.raises(ReportError) as err:
        load_report(raw, source="r.json")
    assert str(err.value).startswith("r.json: ")
    assert words in str(err.value)


# --------------------------------------------------------------------------- normalize_path


@pytest.mark.parametrize(
    ("uri", "base", "expected"),
    [
        ("src/app.py", None, "src/app.py"),
        ("./src/./app.py", None, "src/app.py"),
        ("src//lib/../app.py", None, "src/app.py"),
        ("src\\win\\app.py", None, "src/win/app.py"),
        ("src/a%20b%23.py", None, "src/a b#.py"),
        ("src/100%.py", None, "src/100%.py"),
        ("src/dir/", None, "src/dir"),
        ("file:///abs/root/src/x.py", "/abs/root", "src/x.py"),
        ("file:///abs/root/src/x.py", "file:///abs/root/", "src/x.py"),
        ("file://localhost/abs/root/x.py", "/abs/root/", "x.py"),
        ("/abs/root/src/../x.py", "/abs/root", "x.py"),
        ("file:///C:/work/repo/src/x.py", "C:\\work\\repo", "src/x.py"),
        ("C:\\work\\repo\\src\\x.py", "file:///c:/work/repo/", "src/x.py"),
        ("file:///abs/r%C3%A9po/x.py", "/abs/répo", "x.py"),
        (".~lock.owasp-asvs-4.0.csv#", None, ".~lock.owasp-asvs-4.0.csv#"),
    ],
)
def test_normalize_path_accepts(uri, base, expected):
    assert normalize_path(uri, base=base) == expected


@pytest.mark.parametrize(
    ("uri", "base", "words"),
    [
        ("", None, "empty"),
        ("./", None, "empty"),
        ("../x.py", None, "escapes the repository"),
        ("src/../../x.py", None, "escapes the repository"),
        ("src/%2e%2e/%2e%2e/x.py", None, "escapes the repository"),
        ("/etc/passwd", None, "absolute"),
        ("C:\\x.py", None, "absolute"),
        ("C:x.py", None, "absolute"),
        ("\\\\server\\share\\x.py", None, "absolute"),
        ("file:///etc/passwd", "/abs/root", "not under the repository root"),
        ("/abs/rootkit/x.py", "/abs/root", "not under the repository root"),
        ("/abs/root/../other/x.py", "/abs/root", "not under the repository root"),
        ("/abs/root", "/abs/root", "names the repository root"),
        ("src/a\x00.py", None, "NUL"),
        ("src/a%00.py", None, "NUL"),
        ("src/a\nb.py", None, "control character"),
        ("https://example.com/x.py", None, "not a file path"),
        ("src/%ff.py", None, "not UTF-8"),
    ],
)
def test_normalize_path_refuses(uri, base, words):
    with pytest.raises(ReportError) as err:
        normalize_path(uri, base=base)
    assert words in str(err.value)


def test_plain_paths_are_not_decoded():
    assert normalize_path("src/a%20b.py", plain=True) == "src/a%20b.py"
    assert normalize_path("weird:name.py", plain=True) == "weird:name.py"
    with pytest.raises(ReportError):
        normalize_path("weird:name.py")


def test_non_string_path():
    with pytest.raises(ReportError, match="must be a string"):
        normalize_path(7)  # type: ignore[arg-type]


_SEGMENT_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\%:")
_SEGMENT = st.text(_SEGMENT_CHARS, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
_CLEAN = st.lists(_SEGMENT, min_size=1, max_size=5).map("/".join)
_ANY = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(["..", ".", "", "a", "b%2e", "%2e%2e", "C:", "\\", "file:", "/", "%00", "x y"]),
             max_size=8).map("/".join),
)


@settings(max_examples=200, deadline=None)
@given(uri=_ANY, plain=st.booleans(), base=st.sampled_from([None, "/repo", "file:///repo/"]))
def test_normalize_path_never_returns_an_unsafe_path(uri, plain, base):
    try:
        path = normalize_path(uri, base=base, plain=plain)
    except ReportError:
        return
    segments = path.split("/")
    assert path and not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert ".." not in segments and "." not in segments and "" not in segments
    assert not re.match(r"^[A-Za-z]:", segments[0])
    assert normalize_path(path, plain=True) == path


@settings(max_examples=100, deadline=None)
@given(path=_CLEAN)
def test_clean_relative_paths_round_trip(path):
    assert normalize_path(path) == path
    assert normalize_path(path, plain=True) == path
    assert normalize_path("./" + path) == path
    assert normalize_path("file:///repo/" + path, base="/repo") == path


@settings(max_examples=60, deadline=None)
@given(path=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
                             min_size=1, max_size=8).filter(lambda s: s not in (".", "..")), min_size=1, max_size=4)
       .map("/".join).filter(lambda p: not (len(p) >= 2 and p[1] == ":" and p[0].isalpha())))
def test_plain_mode_round_trips_percent_and_colon(path):
    assert normalize_path(path, plain=True) == path

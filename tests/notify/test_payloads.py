"""The webhook bodies match Semgrep's documented examples field for field, and signing
follows the Standard Webhooks spec (checked by an independent verifier)."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from forge_app.core.models import Finding, Fingerprint
from forge_app.notify import retry
from forge_app.notify.payloads import (
    NotifiedFinding,
    findings_payload,
    sample_finding,
    sample_scan,
    semgrep_scan,
    syntactic_indexes,
)
from forge_app.notify.signing import InvalidSecret, generate_secret, secret_key, webhook_headers
from storage import ScanRecord
from tests.notify.helpers import make_finding, verify_standard_webhook

FIXTURES = Path(__file__).parents[1] / "fixtures" / "semgrep-webhooks"


def scan_record(**changes: Any) -> ScanRecord:
    base = dict(
        id=42, repository_id=1, repository="octo/demo", forge="github", commit="e" * 40, branch="feature",
        base_branch="main", pull_request=7, status="done", count_new=2, count_fixed=0, count_unchanged=1,
        blocking=True, is_baseline=False, base_scan_id=41, errors=[],
        meta={"ci_job_url": "https://ci.example/job/1", "commit_author_name": "Ada", "pull_request_title": "Add x",
              "commit_timestamp": "2024-05-01T10:00:00+02:00"},
        created_at="2024-05-01T08:00:00+00:00", completed_at="2024-05-01T08:00:05+00:00",
    )
    base.update(changes)
    return ScanRecord(**base)


def json_type(value: Any) -> str:
    return type(value).__name__


def test_findings_payload_has_every_documented_field_with_its_type() -> None:
    example = json.loads((FIXTURES / "findings.json").read_text())[0]["semgrep_finding"]
    item = NotifiedFinding(make_finding("a", metadata={"license": "MIT", "vulnerability_class": ["Code Injection"]}),
                           "block", "f" * 32, 40, "2024-04-01T00:00:00+00:00", 0)
    body = findings_payload([item], scan_record())
    assert isinstance(body, list) and list(body[0]) == ["semgrep_finding"]
    ours = body[0]["semgrep_finding"]
    assert list(ours) == list(example), "same fields, same order"
    for key, value in example.items():
        assert json_type(ours[key]) == json_type(value), key
    assert ours["id"] == "f" * 32
    assert ours["ref"] == "refs/heads/feature"
    assert ours["severity"] == 2
    assert (ours["line"], ours["column"], ours["end_line"], ours["end_column"]) == (10, 5, 11, 20)
    assert ours["first_seen_scan_id"] == "40"
    assert ours["cwe"] == "CWE-95: Eval Injection" and ours["owasp"] == "A03:2021 - Injection"
    assert ours["source"] == "https://semgrep.dev/r/python.lang.security.eval"
    assert ours["vulnerability"] == "Code Injection" and ours["license"] == "MIT"
    assert ours["commit_date"] == "2024-05-01T10:00:00+02:00"
    policy = ours["metadata"]["semgrep.policy"]
    assert set(policy) == set(example["metadata"]["semgrep.policy"])
    assert {k: json_type(v) for k, v in policy.items()} == {"id": "int", "name": "str", "slug": "str"}
    assert policy["slug"] == "block"
    assert ours["metadata"]["dev.semgrep.actions"] == ["block"]
    assert set(example["metadata"]) <= set(ours["metadata"])


def _non_null_types(example: dict[str, Any], ours: dict[str, Any]) -> None:
    """Every field the example has a value for has that JSON type in ours: never null."""
    for key, value in example.items():
        if value is not None:
            assert json_type(ours[key]) == json_type(value), (key, ours[key])


def test_missing_values_are_empty_never_null_never_absent() -> None:
    """A finding with no columns, rule info, metadata or snippet, in a scan with no branch or meta:
    strings are "", lists [], columns 1 (tests/fixtures/semgrep-webhooks has ints there)."""
    bare = Finding(rule_id="r", path="p.py", start_line=3, end_line=3, message="m", severity="info",
                   fingerprint=Fingerprint("1" * 32, "2" * 16))
    item = NotifiedFinding(bare, "monitor", "1" * 32, None, None)
    ours = findings_payload([item], scan_record(branch=None, meta={}))[0]["semgrep_finding"]
    example = json.loads((FIXTURES / "findings.json").read_text())[0]["semgrep_finding"]
    assert list(ours) == list(example)
    _non_null_types(example, ours)
    _non_null_types(example["metadata"], ours["metadata"])
    _non_null_types(example["metadata"]["semgrep.policy"], ours["metadata"]["semgrep.policy"])
    assert ours["ref"] == "" and ours["cwe"] == "" and ours["first_seen_scan_id"] == "" and ours["start_date"] == ""
    assert ours["category"] == "" and ours["license"] == "" and ours["source"] == "" and ours["vulnerability"] == ""
    assert ours["references"] == [] and ours["technology"] == []
    assert (ours["line"], ours["column"], ours["end_line"], ours["end_column"]) == (3, 1, 3, 1)
    assert ours["severity"] == 0 and ours["index"] == 0
    assert ours["metadata"]["semgrep.url"] == ""
    assert ours["metadata"]["dev.semgrep.actions"] == []
    assert ours["metadata"]["semgrep.policy"]["slug"] == "monitor"


def test_null_metadata_values_do_not_leak_into_documented_fields() -> None:
    odd = Finding(rule_id="r", path="p.py", start_line=3, end_line=3, message="m",
                  metadata={"semgrep.url": None, "license": None, "vulnerability_class": None, "category": None})
    ours = findings_payload([NotifiedFinding(odd, "comment", "1" * 32, 9, None)], scan_record())[0]["semgrep_finding"]
    assert ours["metadata"]["semgrep.url"] == "" and ours["license"] == "" and ours["vulnerability"] == ""
    assert ours["category"] == ""


@pytest.mark.parametrize("start_col, end_col, start_line, end_line, snippet, expected", [
    (5, 20, 10, 10, None, (5, 20)),  # known: as given
    (None, None, 10, 10, None, (1, 1)),  # unknown, no snippet: the start of the line
    (7, None, 10, 10, None, (7, 7)),  # an empty range at the start, never before it
    (None, None, 10, 10, "    eval(x)", (1, 12)),  # a whole-line snippet: to the end of the line
    (5, None, 10, 10, "    eval(x)\n", (5, 12)),  # its trailing newline does not count
    (None, None, 10, 12, "a = (\n  1,\n)", (1, 2)),  # multi-line: the end of the last line
    (None, None, 10, 12, None, (1, 1)),
    (None, None, 10, 12, "only one line", (1, 1)),  # not the finding's lines: no derivation
    (None, None, 10, 10, "requires login", (1, 1)),  # Semgrep's placeholder is not code
    (0, 0, 10, 10, None, (1, 1)),  # not a 1-based column
])
def test_columns_are_always_integers(start_col: int | None, end_col: int | None, start_line: int, end_line: int,
                                     snippet: str | None, expected: tuple[int, int]) -> None:
    f = Finding(rule_id="r", path="p.py", start_line=start_line, end_line=end_line, start_col=start_col,
                end_col=end_col, message="m", snippet=snippet)
    ours = findings_payload([NotifiedFinding(f, "comment", "1" * 32, 1, None)], scan_record())[0]["semgrep_finding"]
    assert (ours["column"], ours["end_column"]) == expected
    assert (ours["line"], ours["end_line"]) == (start_line, end_line)


def test_bare_scan_payload_is_never_null_where_the_example_has_a_value() -> None:
    example = json.loads((FIXTURES / "scan.json").read_text())["semgrep_scan"]
    ours = semgrep_scan(scan_record(branch=None, pull_request=None, meta={}, completed_at=None))["semgrep_scan"]
    assert list(ours) == list(example)
    _non_null_types(example, ours)
    assert isinstance(ours["exit_code"], int), "known for a finished scan, although null in the example"
    assert ours["branch"] == "" and ours["pull_request_id"] == "" and ours["ignored_files"] == []


def test_scan_payload_has_every_documented_field_with_its_type() -> None:
    example = json.loads((FIXTURES / "scan.json").read_text())["semgrep_scan"]
    body = semgrep_scan(scan_record())
    assert list(body) == ["semgrep_scan"]
    ours = body["semgrep_scan"]
    assert list(ours) == list(example)
    _non_null_types(example, ours)  # completed_at, exit_code: null in the example because that scan was running
    assert ours["exit_code"] == 1 and ours["on"] == "pull_request" and ours["pull_request_id"] == "7"
    assert ours["id"] == "42" and ours["repository"] == "octo/demo" and ours["branch"] == "feature"
    assert ours["completed_at"] == "2024-05-01T08:00:05+00:00"
    assert ours["pull_request_title"] == "Add x" and ours["commit_author_name"] == "Ada"
    assert ours["commit_author_email"] == "" and ours["ignored_files"] == []


def test_push_scan_payload() -> None:
    ours = semgrep_scan(scan_record(pull_request=None, blocking=False, branch="main", meta={}))["semgrep_scan"]
    assert ours["on"] == "push" and ours["exit_code"] == 0
    assert ours["pull_request_id"] == "" and ours["pull_request_title"] == "" and ours["ci_job_url"] == ""


def test_builders_are_pure() -> None:
    item = NotifiedFinding(make_finding("a"), "comment", "a" * 32, 1, None)
    assert findings_payload([item], scan_record()) == findings_payload([item], scan_record())
    assert semgrep_scan(scan_record()) == semgrep_scan(scan_record())
    now = "2024-01-01T00:00:00+00:00"
    sample = findings_payload([sample_finding(now)], sample_scan(now))
    assert sample == findings_payload([sample_finding(now)], sample_scan(now))


def test_index_tells_identical_matches_apart() -> None:
    a1 = make_finding("same", line=5)
    a2 = make_finding("same", line=50)
    b = make_finding("other", line=7)
    assert syntactic_indexes([a2, b, a1]) == [1, 0, 0]


# --- Standard Webhooks --------------------------------------------------------------------

def test_signature_verifies_independently_and_binds_id_timestamp_body() -> None:
    secret = generate_secret()
    body = b'[{"semgrep_finding":{"id":"x"}}]'
    import time
    ts = int(time.time())
    headers = webhook_headers("msg_1", ts, body, secret)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert verify_standard_webhook(secret, headers, body)
    assert not verify_standard_webhook(secret, headers, body + b" ")
    assert not verify_standard_webhook(secret, {**headers, "webhook-id": "msg_2"}, body)
    assert not verify_standard_webhook(generate_secret(), headers, body)


def test_known_vector() -> None:
    """Computed by hand from the spec's recipe: base64(HMAC-SHA256(key, "id.ts.body"))."""
    import hashlib
    import hmac

    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = base64.b64encode(hmac.new(key, b"msg_abc.1700000000.{}", hashlib.sha256).digest()).decode()
    assert webhook_headers("msg_abc", 1700000000, b"{}", secret)["webhook-signature"] == f"v1,{expected}"


def test_without_secret_no_signature() -> None:
    headers = webhook_headers("msg_1", 1, b"{}", None)
    assert "webhook-signature" not in headers and headers["webhook-id"] == "msg_1"


def test_generated_secret_is_standard() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize("bad", ["", "abc", "whsec_", "whsec_!!!notbase64",
                                 "whsec_" + base64.b64encode(b"short").decode(),
                                 "whsec_" + base64.b64encode(b"x" * 65).decode()])
def test_bad_secrets_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(InvalidSecret) as info:
        secret_key(bad)
    if len(bad) > 6:
        assert bad[6:] not in str(info.value)


# --- the retry schedule ---------------------------------------------------------------------

def test_schedule_spans_about_a_day_in_fifteen_attempts() -> None:
    waits = retry.nominal_schedule()
    assert len(waits) == retry.MAX_ATTEMPTS - 1 == 14
    assert waits == sorted(waits) and waits[0] == 10
    assert 20 * 3600 < sum(waits) < 26 * 3600
    rng = random.Random(7)
    for attempt, nominal in enumerate(waits, start=1):
        jittered = retry.retry_delay(attempt, rng)
        assert 0.8 * nominal <= jittered <= 1.2 * nominal


def test_retry_after_parsing() -> None:
    assert retry.parse_retry_after("120", 0) == 120
    assert retry.parse_retry_after("0", 0) == 1  # at least a second
    assert retry.parse_retry_after("9999999", 0) == retry.MAX_DELAY
    assert retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412430) == 50
    assert retry.parse_retry_after("soon", 0) is None and retry.parse_retry_after(None, 0) is None

"""FORGE_APP_LOG_FORMAT=json: one JSON object per line, with the bound ids, never a secret."""

from __future__ import annotations

import json
import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.json_logs import JsonFormatter
from forge_app.log_context import bind


def test_a_json_line_carries_the_context_and_hides_secrets():
    record = logging.LogRecord("forge_app.x", logging.INFO, __file__, 1,
                               "posting with Authorization: Bearer ghs_abcdefghijklmnop1234", None, None)
    with bind(delivery="d-1", job_id=7, scan_id=None):
        line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert doc["delivery"] == "d-1" and doc["job_id"] == 7 and "scan_id" not in doc
    assert doc["level"] == "INFO" and doc["logger"] == "forge_app.x"
    assert "ghs_abcdefghijklmnop1234" not in line


_PIECES = ["Authorization: Bearer ", "AUTHORIZATION token ", "fa_upload_", "ghs_", "gho_", "glpat-", "xoxb-",
           "whsec_", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "TOKEN=", "ſecret: ",
           "prıvate_key=", "Password=", "https://", "user:pw@", "abcdefghijklmnop", "0123456789", " ", "\n", "'",
           '"', "&", "/webhooks/github", "K"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12))
def test_the_quick_look_for_secrets_never_lets_one_through(parts):
    """redact() skips lines without any trigger word; it must mask exactly what the patterns alone mask."""
    from forge_app.logging_setup import _SECRET_PATTERNS, redact

    text = "".join(parts)
    expected = text
    for pattern in _SECRET_PATTERNS:
        expected = pattern.sub(lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2
                                                                 else ""), expected)
    assert redact(text) == expected

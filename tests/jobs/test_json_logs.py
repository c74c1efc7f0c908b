"""FORGE_APP_LOG_FORMAT=json: one JSON object per line, with the bound ids, never a secret."""

from __future__ import annotations

import json
import logging

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

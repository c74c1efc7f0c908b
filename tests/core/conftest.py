"""Helpers for the parser tests: fixture files and small hand-made SARIF logs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _read_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture
def read_fixture() -> Callable[[str], Any]:
    """A fresh decoded copy of a fixture file (tests may mutate it)."""
    return _read_json


def _sarif_log(results: list[dict[str, Any]], *, rules: list[dict[str, Any]] | None = None,
               tool: str = "CodeQL", **run: Any) -> dict[str, Any]:
    """A minimal valid SARIF 2.1.0 log with one run holding `results`."""
    driver: dict[str, Any] = {"name": tool}
    if rules is not None:
        driver["rules"] = rules
    return {"version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": copy.deepcopy(results), **run}]}


@pytest.fixture
def sarif_log() -> Callable[..., dict[str, Any]]:
    return _sarif_log


def _sarif_result(uri: str = "src/app.py", start_line: int = 3, rule_id: str = "r1", **region: Any) -> dict[str, Any]:
    """One SARIF result at `uri`, line `start_line` (+ any region fields)."""
    return {
        "ruleId": rule_id,
        "message": {"text": "m"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                            "region": {"startLine": start_line, **region}}}],
    }


@pytest.fixture
def sarif_result() -> Callable[..., dict[str, Any]]:
    return _sarif_result

"""Building realistic GitLab deliveries and scan uploads for the tests."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fix

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gitlab" / "webhooks"
HEADERS = json.loads((FIXTURES / "delivery-headers.json").read_text())
EVENT_HEADER = HEADERS["x_gitlab_event_by_object_kind"]


def fixture(name: str) -> dict[str, Any]:
    """A delivery body from tests/fixtures/gitlab/webhooks (e.g. 'captured/merge_request.open')."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def adapt(doc: dict[str, Any], *, project: str, project_id: int, default_branch: str = "main",
          iid: int | None = None, head: str | None = None, oldrev: str | None = None,
          ref: str | None = None, after: str | None = None) -> dict[str, Any]:
    """The same delivery about our project (ids changed in memory; the fixture file is untouched)."""
    doc = copy.deepcopy(doc)
    doc["project"].update(path_with_namespace=project, id=project_id, default_branch=default_branch)
    if "project_id" in doc:
        doc["project_id"] = project_id
    attrs = doc.get("object_attributes")
    if isinstance(attrs, dict):
        if iid is not None:
            attrs["iid"] = iid
        if head is not None:
            attrs.setdefault("last_commit", {})["id"] = head
        if oldrev is not None:
            attrs["oldrev"] = oldrev
        for side in ("source", "target"):
            if isinstance(attrs.get(side), dict):
                attrs[side]["path_with_namespace"] = project
    if ref is not None:
        doc["ref"] = ref
    if after is not None:
        doc["after"] = after
    return doc


def delivery_headers(doc: dict[str, Any], token: str, *, key: str | None = None, event: str | None = None,
                     uuid_header: bool = True) -> dict[str, str]:
    headers = {k: v for k, v in HEADERS["headers_example"].items() if k != "X-Gitlab-Token"}
    headers["X-Gitlab-Token"] = token
    headers["X-Gitlab-Event"] = event or EVENT_HEADER.get(doc.get("object_kind", ""), "System Hook")
    headers["Idempotency-Key"] = key or str(uuid.uuid4())
    if uuid_header:
        headers["X-Gitlab-Event-UUID"] = str(uuid.uuid4())
    else:
        headers.pop("X-Gitlab-Event-UUID", None)
    return headers


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line containing `needle`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} not found")


def finding(files: dict[str, str], rule: str, path: str, needle: str, *, end_needle: str | None = None,
            message: str = "", severity: str = "warning", fix: list[str] | None = None,
            fix_end_needle: str | None = None, cwe: list[str] | None = None) -> Finding:
    text = files[path]
    start = line_of(text, needle)
    end = line_of(text, end_needle) if end_needle else start
    lines = text.splitlines()
    fix_obj = None
    if fix is not None:
        fix_end = line_of(text, fix_end_needle) if fix_end_needle else start
        fix_obj = Fix(start, fix_end, tuple(fix))
    from forge_app.core.models import RuleInfo

    return Finding(rule_id=rule, path=path, start_line=start, end_line=end, message=message or f"{rule} matched",
                   severity=severity, snippet="\n".join(lines[start - 1:end]), fix=fix_obj, tool="semgrep",
                   rule=RuleInfo(cwe=tuple(cwe or ()), help_uri=f"https://semgrep.dev/r/{rule}"))


def upload_body(files: dict[str, str], findings: list[Finding], *, commit: str, branch: str,
                pull_request: int | None = None, base_branch: str | None = None) -> dict[str, Any]:
    """What `forge-app upload` sends: findings fingerprinted from the real source files."""
    fingerprinted = fingerprint_findings(findings, lambda p: files.get(p))
    body: dict[str, Any] = {"commit": commit, "branch": branch, "pull_request": pull_request, "tools": ["semgrep"],
                            "findings": [f.to_dict() for f in fingerprinted]}
    if base_branch:
        body["base_branch"] = base_branch
    return body


def drain(app: Any) -> int:
    """Run every due job of the app's worker now."""
    return asyncio.run(app.state.worker.drain())

"""Building upload bodies for API tests."""

from __future__ import annotations

import hashlib
from typing import Any

from forge_app.core.models import Finding, Fingerprint, Fix

SHA_BASE = "a" * 40
SHA_HEAD = "b" * 40


def hexhash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def finding(rule: str = "python.lang.eval", path: str = "app/main.py", line: int = 3, code: str = "eval(x)",
            *, fix: list[str] | None = None, metadata: dict[str, Any] | None = None,
            severity: str = "error") -> dict[str, Any]:
    fp = Fingerprint(value=hexhash(f"{rule}{code}{path}", 32), code=hexhash(f"{rule}{code}", 16))
    return Finding(
        rule_id=rule, path=path, start_line=line, end_line=line, message=f"{rule} flagged", severity=severity,
        snippet=code, fix=Fix(line, line, tuple(fix)) if fix else None, metadata=metadata or {},
        fingerprint=fp, tool="semgrep",
    ).to_dict()


def upload(findings: list[dict[str, Any]], *, commit: str = SHA_HEAD, pr: int | None = None,
           branch: str = "main", base_branch: str | None = None, repository: str = "octo/demo") -> dict[str, Any]:
    return {"repository": repository, "commit": commit, "branch": branch, "base_branch": base_branch,
            "pull_request": pr, "findings": findings, "tools": ["semgrep"]}

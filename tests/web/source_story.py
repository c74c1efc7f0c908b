"""The story the source-fetch tests tell on every forge: raw `semgrep scan --json` output
without login ("requires login" instead of code), so only the files at the commit can give
the findings context; then a pull request that inserts a copy of a flagged line right
above the original, where context-free fingerprints would blame the original."""

from __future__ import annotations

import re
from typing import Any

EVAL = "python.lang.security.audit.eval-detected"
MD5 = "python.lang.security.insecure-hash-algorithms.insecure-hash-algorithm-md5"
RULES = {EVAL: (r"\beval\(", "Detected the use of eval()."), MD5: (r"hashlib\.md5\(", "Detected MD5.")}

BASE_FILES = {
    "app/views.py": (
        "import os\n"
        "\n"
        "\n"
        "def load(raw):\n"
        "    data = raw.strip()\n"
        "    return eval(data)\n"
        "\n"
        "\n"
        "def other():\n"
        "    return 1\n"
    ),
    "app/util.py": (
        "import hashlib\n"
        "\n"
        "\n"
        "def a(text):\n"
        "    return hashlib.md5(text).hexdigest()\n"
        "\n"
        "\n"
        "def b(text):\n"
        "    return hashlib.md5(text).hexdigest()\n"
        "\n"
        "\n"
        "VERSION = 1\n"
    ),
}
# A new function above `load` holds a copy of its flagged line: by line order alone the copy
# (line 6, where the original was) would pass for the original, and the original (now line 11)
# would be reported new.
HEAD_FILES = {
    **BASE_FILES,
    "app/views.py": (
        "import os\n"
        "\n"
        "\n"
        "def again(data):\n"
        "    data = data.lower()\n"
        "    return eval(data)\n"
        "\n"
        "\n"
        "def load(raw):\n"
        "    data = raw.strip()\n"
        "    return eval(data)\n"
        "\n"
        "\n"
        "def other():\n"
        "    return 1\n"
    ),
}
COPY_LINE = 6
ORIGINAL_LINE = 11


def semgrep_results(files: dict[str, str], extra_paths: dict[str, list[int]] | None = None) -> list[dict[str, Any]]:
    """What Semgrep reports for the files, without login: no code, no fingerprint."""
    results = []
    for path in sorted(files):
        for number, line in enumerate(files[path].split("\n"), 1):
            for rule, (pattern, message) in RULES.items():
                for m in re.finditer(pattern, line):
                    results.append(result(rule, path, number, m.start() + 1, len(line) + 1, message))
    for path, lines in (extra_paths or {}).items():
        for number in lines:
            results.append(result(EVAL, path, number, 5, 15, RULES[EVAL][1]))
    return results


def result(rule: str, path: str, line: int, col: int, end_col: int, message: str) -> dict[str, Any]:
    return {"check_id": rule, "path": path, "start": {"line": line, "col": col, "offset": 0},
            "end": {"line": line, "col": end_col, "offset": 0},
            "extra": {"message": message, "severity": "ERROR", "lines": "requires login", "metadata": {},
                      "fingerprint": "requires login", "is_ignored": False}}


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    scanned = sorted({r["path"] for r in results})
    return {"version": "1.85.0", "results": results, "errors": [], "paths": {"scanned": scanned}}


def post_raw(client: Any, token: str, doc: dict[str, Any], *, commit: str, branch: str = "main",
             pr: int | None = None, base_branch: str | None = None) -> dict[str, Any]:
    """Body form 3: the raw report, the metadata in the query string."""
    query = f"commit={commit}&branch={branch}"
    if pr is not None:
        query += f"&pull_request={pr}&base_branch={base_branch or 'main'}"
    response = client.post(f"/api/v1/scans?{query}", json=doc, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()


def get_scan(client: Any, token: str, scan_id: int, findings: str | None = None) -> dict[str, Any]:
    suffix = f"?findings={findings}" if findings else ""
    response = client.get(f"/api/v1/scans/{scan_id}{suffix}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def has_context(finding: dict[str, Any]) -> bool:
    fp = finding["fingerprint"]
    return bool(fp["before"]) and bool(fp["after"])

"""Benchmark: a `semgrep ci` run against forge-app beside an upload of the same findings.

Starts `forge-app serve` in its own process with FORGE_APP_RULES, then, for N findings in the
CLI's results format (what 1.182.0 sends: no code, ids and hashes), times the whole CLI
conversation (start, config, results, complete) and, as the baseline in the same run, a
`POST /api/v1/scans` of the same findings as raw Semgrep JSON. Both for the base branch, then
for a diff-aware PR scan against it. The semgrep ci path should cost about what the upload costs.

    .venv/bin/python bench/semgrep_ci.py [--findings 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from upload import create_token, free_port, peak_rss_mb, start_server  # noqa: E402

RULES = "rules:\n" + "".join(
    f"  - id: bench.rule.{i}\n    pattern: risky_call_{i}(...)\n    message: rule {i}\n"
    f"    languages: [python]\n    severity: WARNING\n" for i in range(20))


def ci_findings(n: int, files: int = 200, start: int = 0, folder: str = "src") -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        line = 10 + (i // files) * 7
        out.append({"check_id": f"bench.rule.{i % 20}", "path": f"{folder}/module_{i % files}/file.py", "line": line,
                    "column": 5, "end_line": line, "end_column": 30, "message": f"finding {i}: risky",
                    "severity": 1, "index": 0, "commit_date": "2026-01-01T00:00:00",
                    "syntactic_id": f"{i:032x}", "match_based_id": f"{i:0128x}_0",
                    "hashes": {"start_line_hash": "0" * 64, "end_line_hash": "0" * 64, "code_hash": f"{i:064x}",
                               "pattern_hash": "1" * 64},
                    "metadata": {"dev.semgrep.actions": ["comment"]}, "is_blocking": False,
                    "validation_state": "NO_VALIDATOR", "engine_kind": "OSS"})
    return out


def as_semgrep_json(findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"results": [{"check_id": f["check_id"], "path": f["path"],
                         "start": {"line": f["line"], "col": f["column"], "offset": 0},
                         "end": {"line": f["end_line"], "col": f["end_column"], "offset": 0},
                         "extra": {"message": f["message"], "severity": "WARNING", "metadata": f["metadata"],
                                   "lines": "requires login", "fingerprint": "requires login"}}
                        for f in findings], "errors": [], "version": "1.182.0"}


def semgrep_ci_run(base: str, token: str, findings: list[dict[str, Any]], *, commit: str, branch: str,
                   pr: str | None) -> tuple[float, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    unique = str(uuid.uuid4())
    meta = {"repository": "bench/repo", "commit": commit, "branch": branch, "pull_request_id": pr,
            "is_full_scan": pr is None, "scan_environment": "git", "on": "pull_request" if pr else "push"}
    started = time.perf_counter()
    with httpx.Client(timeout=120, headers=headers) as c:
        run_id = c.post(f"{base}/api/cli/v2/scans", json={
            "project_metadata": meta, "scan_metadata": {"unique_id": unique, "cli_version": "1.182.0"},
            "project_config": {}}).raise_for_status().json()["info"]["id"]
        c.get(f"{base}/api/cli/v2/scans/{unique}/config").raise_for_status()
        task = c.post(f"{base}/api/agent/scans/{run_id}/results", json={
            "findings": findings, "ignores": [], "token": None, "searched_paths": [], "renamed_paths": [],
            "rule_ids": [], "skipped_paths": [], "contributions": []}).raise_for_status().json()["task_id"]
        c.post(f"{base}/api/agent/scans/{run_id}/complete", json={"exit_code": 0, "stats": {}}).raise_for_status()
        elapsed = time.perf_counter() - started
        return elapsed, c.get(f"{base}/api/v1/scans/{task}").json()["counts"]


def upload_run(base: str, token: str, findings: list[dict[str, Any]], *, commit: str, branch: str,
               pr: str | None) -> tuple[float, dict[str, Any]]:
    doc = {"commit": commit, "branch": branch, "report": as_semgrep_json(findings)}
    if pr:
        doc.update(pull_request=int(pr), base_branch="main")
    started = time.perf_counter()
    r = httpx.post(f"{base}/api/v1/scans", json=doc, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    elapsed = time.perf_counter() - started
    return elapsed, r.raise_for_status().json()["counts"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--findings", type=int, default=5_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="forge-bench-ci-"))
    (tmp / "rules.yml").write_text(RULES)
    port = free_port()
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp / "bench.db"), "FORGE_APP_LOG_LEVEL": "WARNING",
           "FORGE_APP_PUBLIC_URL": f"http://127.0.0.1:{port}", "FORGE_APP_RULES": str(tmp / "rules.yml")}
    tokens = {repo: create_token(env, repo, init=repo == "bench/repo")  # the first creates the database
              for repo in ("bench/repo", "bench/upload")}
    server = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        findings = ci_findings(args.findings)
        # The PR keeps half the base findings (the diff-aware CLI sends only these and 50 in new files).
        pr_findings = findings[: args.findings // 2] + ci_findings(50, start=args.findings, folder="new")
        for label, found, commit, branch, pr in (("base branch, full scan", findings, "a" * 40, "main", None),
                                                 ("PR, diff-aware", pr_findings, "b" * 40, "feature", "1")):
            up, up_counts = upload_run(base, tokens["bench/upload"], found, commit=commit, branch=branch, pr=pr)
            ci, ci_counts = semgrep_ci_run(base, tokens["bench/repo"], found, commit=commit, branch=branch, pr=pr)
            print(f"{label}: {len(found)} findings: semgrep ci {ci:.2f} s (counts {ci_counts}) | baseline "
                  f"POST /api/v1/scans {up:.2f} s (counts {up_counts}) | ratio {ci / up:.2f}")
        print(f"server peak RSS {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`forge-app upload`: the CI uploader.

Reads Semgrep JSON or SARIF (auto-detected), fingerprints each finding from the
checkout at --root (so the server never needs the code), uploads gzip-compressed,
prints a summary and, last, the scan's URL. Exit 0: nothing blocking is new;
1: a blocking finding is new; 2: usage, config, network or server error.

When some findings have neither their file under --root nor a code snippet, a server
that can read the repository from its forge answers `processing` and reads the files
itself; the uploader then polls the scan (every second, at most --timeout seconds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forge_app.cli import git
from forge_app.cli.ci_env import detect_ci
from forge_app.core.envelope import SHA_RE
from forge_app.core.models import Finding, ReportError

MAX_SOURCE_BYTES = 20 * 1024 * 1024
RETRIES = 3
POLL_INTERVAL = 1.0


class UploadFailed(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="Semgrep JSON or SARIF 2.1.0 files")
    parser.add_argument("--server", help="forge-app URL (default: $FORGE_APP_URL)")
    parser.add_argument("--token", help="upload token (default: $FORGE_APP_TOKEN)")
    parser.add_argument("--repo", help="owner/name (default: from CI variables)")
    parser.add_argument("--commit", help="40-character commit SHA (default: from CI variables)")
    parser.add_argument("--branch", help="branch scanned (default: from CI variables)")
    parser.add_argument("--base-branch", help="the PR/MR target branch (default: from CI variables)")
    parser.add_argument("--base-commit", help="the commit the PR/MR branched from, to compare against its scan "
                                              "(default: from CI variables when they have it)")
    parser.add_argument("--pr", help="PR/MR number (default: from CI variables)")
    parser.add_argument("--root", default=".", help="checkout the reports refer to (default: .)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the server, and for a scan it is still processing (default 120)")


def _read_source(root: Path):
    resolved_root = root.resolve()

    def read(path: str) -> str | None:
        target = (resolved_root / path).resolve()
        if resolved_root != target and resolved_root not in target.parents:
            return None
        try:
            if not target.is_file() or target.stat().st_size > MAX_SOURCE_BYTES:
                return None
            return target.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return None

    return read


def build_envelope(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """Everything the server needs, from flags first and CI variables second."""
    from forge_app.core.fingerprint import fingerprint_findings
    from forge_app.core.parsing import load_report

    def read_event(path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

    ci = detect_ci(env, read_event)
    commit = (args.commit or ci.commit or "").lower()
    if not SHA_RE.match(commit):
        raise UploadFailed("--commit must be the full 40-character SHA (none found in CI variables)"
                           if not commit else f"--commit must be the full 40-character SHA, not {commit!r}")
    pr_raw = args.pr if args.pr is not None else ci.pull_request
    pull_request = None
    if pr_raw not in (None, ""):
        if not re.fullmatch(r"\d+", str(pr_raw)) or int(pr_raw) < 1:
            raise UploadFailed(f"--pr must be a positive number, not {pr_raw!r}")
        pull_request = int(pr_raw)
    root = Path(args.root)
    if not root.is_dir():
        raise UploadFailed(f"--root {args.root} is not a directory")
    findings: list[Finding] = []
    tools: list[str] = []
    errors: list[str] = []
    reader = _read_source(root)
    for name in args.reports:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            raise UploadFailed(f"cannot read {name}: {exc.strerror}") from None
        try:
            report = load_report(raw, source=name, root=str(root.resolve()))
            findings.extend(fingerprint_findings(list(report.findings), reader))
        except ReportError as exc:
            message = str(exc)
            raise UploadFailed(message if message.startswith(name) else f"{name}: {message}") from None
        tools.append(report.tool)
        errors.extend(report.errors)
    notes = root_notes(root, args.root, [f.path for f in findings])
    base_commit = _base_commit(getattr(args, "base_commit", None) or ci.base_commit)
    changes = git.line_map(root, base_commit, None) if base_commit and pull_request else None
    renames = (changes.renames if changes is not None
               else git_renames(root, base_commit, commit) if base_commit and pull_request else {})
    return {
        "repository": args.repo or ci.repository,
        "commit": commit,
        "branch": args.branch or ci.branch,
        "base_branch": args.base_branch or ci.base_branch,
        "base_commit": base_commit,
        "renames": renames,
        **({"line_changes": changes.to_dict()} if changes is not None else {}),
        "pull_request": pull_request,
        "tools": sorted(set(tools)),
        "errors": errors,
        "meta": ci.meta,
        "notes": notes,
        "findings": [f.to_dict() for f in findings],
    }


MISSING_SHARE = 0.10


def root_notes(root: Path, given: str, paths: list[str]) -> list[str]:
    """A note when more than 10% of the files the reports name are not under --root: a wrong root
    (or running from another directory) leaves findings without their code's context."""
    distinct = sorted(set(paths))
    if not distinct:
        return []
    resolved = root.resolve()
    missing = [p for p in distinct if not (resolved / p).is_file()]
    if len(missing) <= MISSING_SHARE * len(distinct):
        return []
    return [f"{len(missing)} of {len(distinct)} files the reports name are not under --root {given} "
            f"({resolved}), e.g. {missing[0]}: their findings are fingerprinted from snippets or the tool's "
            "ids only; run from the checkout's top directory or pass --root"]


def git_renames(root: Path, base: str, head: str) -> dict[str, str]:
    """Files the change renamed (old path -> new path), from the checkout's git history, so a
    moved file's findings stay the same findings. Empty when git or the base commit is not at
    hand (a shallow clone): the server then sees the moved file's findings as fixed and new."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(root), "diff", "--name-status", "-M", "-z", "--diff-filter=R",
                               base, head], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    if done.returncode != 0:
        return {}
    parts = done.stdout.decode("utf-8", "replace").split("\0")
    renames: dict[str, str] = {}
    i = 0
    while i + 2 < len(parts):
        status, old, new = parts[i], parts[i + 1], parts[i + 2]
        if status.startswith("R"):
            renames[old] = new
        i += 3
    return renames


def _base_commit(value: str | None) -> str | None:
    if not value:
        return None
    if not SHA_RE.match(value.lower()):
        raise UploadFailed(f"--base-commit must be the full 40-character SHA, not {value!r}")
    return value.lower()


def post(server: str, token: str, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
    import httpx

    body = gzip.compress(json.dumps(envelope, separators=(",", ":")).encode(), compresslevel=6)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Content-Encoding": "gzip", "User-Agent": "forge-app-upload"}
    url = server.rstrip("/") + "/api/v1/scans"
    last = "no attempt made"
    for attempt in range(RETRIES):
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            last = f"cannot reach {server}: {type(exc).__name__}"
        else:
            if response.status_code == 201:
                return response.json()
            try:
                err = response.json()
                detail = f"{err.get('error')}: {err.get('detail')}"
            except ValueError:
                detail = response.text[:300]
            last = f"server answered {response.status_code}: {detail}"
            if response.status_code < 500 and response.status_code != 429:
                break
        time.sleep(min(8, 2 ** attempt))
    raise UploadFailed(last)


def wait_for_scan(server: str, token: str, scan: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll `GET /api/v1/scans/{id}` until the scan is no longer `processing`, for at most `timeout` s."""
    import httpx

    url = f"{server.rstrip('/')}/api/v1/scans/{scan.get('id')}"

    headers = {"Authorization": f"Bearer {token}", "User-Agent": "forge-app-upload"}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(POLL_INTERVAL, left))
        try:
            response = httpx.get(url, headers=headers, timeout=max(1.0, min(30.0, deadline - time.monotonic())))
        except httpx.HTTPError as exc:
            last = f" (last poll: {type(exc).__name__})"
            continue
        if response.status_code == 200:
            try:
                current = response.json()
            except ValueError:
                current = {"status": "processing"}
            if current.get("status") != "processing":
                return current
            last = ""
        elif response.status_code < 500 and response.status_code != 429:
            raise UploadFailed(f"polling {url}: server answered {response.status_code}: {response.text[:300]}")
        else:
            last = f" (last poll: server answered {response.status_code})"
    raise UploadFailed(f"scan {scan.get('id')} is still processing on the server after {timeout:g} s{last}; "
                       f"its results will be at {scan.get('url') or url}")


def summarize(scan: dict[str, Any]) -> list[str]:
    counts = scan.get("counts", {})
    lines = [f"forge-app: scan {scan.get('id')} of {scan.get('repository')} at {str(scan.get('commit'))[:12]}: "
             f"{counts.get('new', 0)} new, {counts.get('fixed', 0)} fixed, {counts.get('unchanged', 0)} unchanged"]
    by_tool = scan.get("counts_by_tool") or {}
    if len(by_tool) > 1:  # each tool is compared with its own baseline
        lines.append("  per tool: " + "; ".join(
            f"{tool} {c.get('new', 0)} new, {c.get('fixed', 0)} fixed, {c.get('unchanged', 0)} unchanged"
            for tool, c in sorted(by_tool.items())))
    for f in scan.get("new_findings", []):
        first_line = f["message"].splitlines()[0] if f["message"] else ""
        lines.append(f"  {f['mode'].upper():8} {f['path']}:{f['line']} {f['rule_id']}: {first_line}")
    if scan.get("new_findings_truncated"):
        lines.append(f"  ... and {scan['new_findings_truncated']} more")
    for note in scan.get("notes") or []:  # what the uploader or the server guessed, one line each
        lines.append(f"note: {note}")
    if scan.get("baseline_scan_id") is None and scan.get("pull_request") is not None:
        lines.append("note: no scan of the base branch is known yet, so every finding counts as new; "
                     "upload a scan of the base branch first")
    lines.append("result: blocking findings are new" if scan.get("blocking") else "result: nothing blocking is new")
    return lines


def run(args: argparse.Namespace) -> int:
    env = os.environ
    server = args.server or env.get("FORGE_APP_URL")
    token = args.token or env.get("FORGE_APP_TOKEN")
    if not server:
        return _fail("--server is required (or set FORGE_APP_URL)")
    if not token:
        return _fail("--token is required (or set FORGE_APP_TOKEN)")
    if not re.match(r"^https?://", server):
        return _fail(f"--server must be an http(s) URL, not {server!r}")
    try:
        envelope = build_envelope(args, env)
        scan = post(server, token, envelope, args.timeout)
    except UploadFailed as exc:
        return _fail(str(exc))
    # The last line is the scan's URL as the server answered it (built on FORGE_APP_PUBLIC_URL, the
    # address comments, notifications and the console use); the address this job reached if none.
    url = scan.get("url") or f"{server.rstrip('/')}/api/v1/scans/{scan.get('id')}"
    if scan.get("status") == "processing":
        print(f"forge-app: scan {scan.get('id')} is processing: the server reads the source files the report "
              f"lacks from the forge (waiting up to {args.timeout:g} s)", flush=True)
        try:
            scan = wait_for_scan(server, token, scan, args.timeout)
        except UploadFailed as exc:
            print(url)
            return _fail(str(exc))
    if scan.get("status") == "failed":
        print(url)
        return _fail(f"the server could not complete scan {scan.get('id')}: "
                     f"{scan.get('error_detail') or 'no reason given'} ({url})")
    for line in summarize(scan):
        print(line)
    print(url)
    if scan.get("published") is False:  # billing never breaks a customer's CI
        print(f"forge-app upload: nothing published on the forge: {scan.get('reason')}", file=sys.stderr)
        return 0
    return 1 if scan.get("blocking") else 0


def _fail(message: str) -> int:
    print(f"forge-app upload: error: {message}", file=sys.stderr)
    return 2

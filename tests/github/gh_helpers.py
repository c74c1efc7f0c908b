"""Helpers for the GitHub tests: signed webhook deliveries built from GitHub's real payloads,
source trees scanned by a toy rule set and fingerprinted like `forge-app upload` does,
and GitHub-style patches of the changes between two trees."""

from __future__ import annotations

import copy
import difflib
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fix

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github" / "webhooks"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
REPO = "octo/demo"
INSTALLATION = 1001
PR = 7


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


# webhooks ----------------------------------------------------------------------------------
def payload(name: str) -> dict[str, Any]:
    """A real GitHub payload (tests/fixtures/github/webhooks/<name>.json), as a fresh copy."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(client: Any, event: str, body: dict[str, Any] | bytes, *, delivery: str | None = None,
            secret: str = WEBHOOK_SECRET, sign: bool = True) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/123abc",
               "X-GitHub-Hook-Installation-Target-Type": "integration"}
    if sign:
        headers["X-Hub-Signature-256"] = signature(raw, secret)
    return client.post("/webhooks/github", content=raw, headers=headers)


def _repository(p: dict[str, Any], full_name: str, default_branch: str = "main") -> None:
    owner, name = full_name.split("/")
    repo = p.setdefault("repository", {})
    repo.update(full_name=full_name, name=name, default_branch=default_branch)
    repo.setdefault("owner", {})["login"] = owner


def installation_event(action: str, installation_id: int = INSTALLATION, repos: Iterable[str] = (REPO,),
                       account: str = "octo") -> dict[str, Any]:
    p = payload(f"installation/{action}")
    p["installation"]["id"] = installation_id
    p["installation"]["account"]["login"] = account
    if "repositories" in p or action in ("created", "deleted"):
        p["repositories"] = [{"id": 500 + i, "name": r.split("/")[1], "full_name": r, "private": True}
                             for i, r in enumerate(repos)]
    return p


def pull_request_event(action: str, head_sha: str, *, number: int = PR, repo: str = REPO, base_ref: str = "main",
                       installation_id: int = INSTALLATION, variant: str = "") -> dict[str, Any]:
    name = f"pull_request/{action}{variant}"
    p = payload(name)
    p["number"] = number
    pr = p["pull_request"]
    pr["number"] = number
    pr["head"]["sha"] = head_sha
    pr["head"]["ref"] = "feature"
    pr["base"]["ref"] = base_ref
    _repository(p, repo)
    p["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    return p


def rerequest_event(event: str, head_sha: str, *, repo: str = REPO,
                    installation_id: int = INSTALLATION) -> dict[str, Any]:
    p = payload(f"{event}/rerequested")
    p[event]["head_sha"] = head_sha
    if event == "check_run":
        p["check_run"]["name"] = "forge-app"
    _repository(p, repo)
    p["installation"] = {"id": installation_id, "node_id": "x"}
    return p


# source trees, a toy scanner, patches ----------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    pattern: str
    message: str
    severity: str = "warning"
    span: int = 1
    fix: Callable[[list[str]], list[str]] | None = None


RULES = [
    Rule("python.lang.security.eval", r"\beval\(", "eval() of untrusted input runs arbitrary code.", "error",
         fix=lambda lines: [lines[0].replace("eval(", "ast.literal_eval(")]),
    Rule("python.lang.security.os-system", r"os\.system\(", "os.system() runs a shell.", "error"),
    Rule("python.sqli.string-format", r"execute\(\".*%s.*\" %", "SQL built with % formatting.", "error"),
    Rule("python.requests.no-timeout", r"requests\.get\($", "requests.get() without a timeout can hang forever.",
         span=2, fix=lambda lines: [lines[0], lines[1].replace(")", ", timeout=10)")]),
    Rule("python.weak-hash.md5", r"hashlib\.md5\(", "MD5 is not collision resistant.",
         fix=lambda lines: [lines[0].replace("md5", "sha256")]),
    Rule("python.debug.print", r"\bprint\(", "print() left in code.", "info"),
]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def scan_tree(root: Path, rules: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Findings of the toy rules in every .py file under root, fingerprinted from the checkout."""
    wanted = None if rules is None else set(rules)
    findings: list[Finding] = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        lines = file.read_text().split("\n")
        for rule in RULES:
            if wanted is not None and rule.id not in wanted:
                continue
            for i, line in enumerate(lines, 1):
                if not re.search(rule.pattern, line):
                    continue
                end = i + rule.span - 1
                flagged = lines[i - 1 : end]
                fix = Fix(i, end, tuple(rule.fix(flagged))) if rule.fix else None
                findings.append(Finding(rule_id=rule.id, path=rel, start_line=i, end_line=end, message=rule.message,
                                        severity=rule.severity, snippet="\n".join(flagged), fix=fix, tool="semgrep"))

    def read(path: str) -> str | None:
        target = root / path
        return target.read_text() if target.is_file() else None

    return [f.to_dict() for f in fingerprint_findings(findings, read)]


def patch_of(old: str, new: str) -> str:
    """The `patch` GitHub shows for one file: hunks only, 3 lines of context."""
    lines = list(difflib.unified_diff(old.split("\n"), new.split("\n"), lineterm="", n=3))
    return "\n".join(lines[2:])


def github_files(base: dict[str, str], head: dict[str, str]) -> list[dict[str, Any]]:
    """`GET /pulls/{n}/files` entries for the changes from base to head."""
    out = []
    for path in sorted(set(base) | set(head)):
        old, new = base.get(path), head.get(path)
        if old == new:
            continue
        status = "added" if old is None else ("removed" if new is None else "modified")
        patch = patch_of(old or "", new or "")
        added = sum(1 for ln in patch.splitlines() if ln.startswith("+"))
        removed = sum(1 for ln in patch.splitlines() if ln.startswith("-"))
        out.append({"sha": sha(path + (new or "")), "filename": path, "status": status, "additions": added,
                    "deletions": removed, "changes": added + removed, "patch": patch})
    return out


def upload(client: Any, token: str, *, commit: str, findings: list[dict[str, Any]], pr: int | None = None,
           branch: str = "main", base_branch: str | None = None, repo: str = REPO) -> dict[str, Any]:
    body = {"repository": repo, "commit": commit, "branch": branch, "base_branch": base_branch, "pull_request": pr,
            "findings": findings, "tools": ["semgrep"]}
    response = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()


def open_pull_request(client: Any, storage: Any, fake: Any, tmp_path: Path, base: dict[str, str],
                      head: dict[str, str], *, head_sha: str, rules: Iterable[str] | None = None, pr: int = PR,
                      repo: str = REPO, installation: int | None = INSTALLATION,
                      base_rules: Iterable[str] | None = None) -> tuple[str, dict[str, Any]]:
    """An installed repository with a base scan and a PR scan uploaded; returns (upload token, PR scan)."""
    if installation is not None:
        if installation in fake.installations:
            fake.installations[installation]["repos"].add(repo)
        else:
            fake.add_installation(installation, repo.split("/")[0], [repo])
        storage.upsert_github_installation(installation)
        storage.link_github_repositories(installation, [repo])
    token = storage.create_upload_token("github", repo)
    root = tmp_path / repo.replace("/", "_")
    base_tree = write_tree(root / "base", base)
    base_findings = scan_tree(base_tree, base_rules if base_rules is not None else rules)
    upload(client, token, commit=sha(f"base:{repo}"), findings=base_findings, branch="main", repo=repo)
    return token, push_pull_request(client, token, fake, root, base, head, head_sha=head_sha, rules=rules, pr=pr,
                                    repo=repo)


def push_pull_request(client: Any, token: str, fake: Any, root: Path, base: dict[str, str], head: dict[str, str], *,
                      head_sha: str, rules: Iterable[str] | None = None, pr: int = PR,
                      repo: str = REPO) -> dict[str, Any]:
    """A new head commit on the PR (GitHub side), scanned and uploaded (CI side)."""
    fake.set_pull(repo, pr, head_sha, github_files(base, head))
    tree = write_tree(root / head_sha[:8], head)
    return upload(client, token, commit=head_sha, findings=scan_tree(tree, rules), pr=pr, branch="feature",
                  base_branch="main", repo=repo)

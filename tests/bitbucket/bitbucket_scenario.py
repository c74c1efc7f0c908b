"""The story the Bitbucket tests tell: real source files, a tiny regex scanner standing in
for Semgrep, fingerprints computed from the files (so re-indent tolerance is real),
uploads in the CLI's shape, and signed deliveries adapted from the recorded fixtures."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fix, RuleInfo
from tests.bitbucket.fake_bitbucket import FakeBitbucket

WEBHOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "bitbucket" / "webhooks"
REPO = "acme/widgets"
PR = 7
SOURCE_BRANCH = "feature/risky"
WEBHOOK_SECRET = "bitbucket-webhook-secret-0123456789"

EVAL = "python.lang.security.audit.eval-detected"
PICKLE = "python.lang.security.deserialization.avoid-pickle"
MD5 = "python.lang.security.insecure-hash-algorithms.insecure-hash-algorithm-md5"
OPEN = "python.lang.best-practice.open-never-closed"


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: str
    severity: str
    message: str
    fix: tuple[str, str] | None = None  # (old, new) text replaced on the flagged line


RULES = (
    Rule(EVAL, r"\beval\(", "error", "Detected the use of eval(). eval() can be dangerous if used to evaluate "
         "dynamic content.", ("eval(", "ast.literal_eval(")),
    Rule(PICKLE, r"pickle\.loads\(", "warning", "Avoid using `pickle`, which is known to lead to code execution "
         "vulnerabilities."),
    Rule(MD5, r"hashlib\.md5\(", "warning", "Detected MD5 hash algorithm which is considered insecure.",
         ("hashlib.md5(", "hashlib.sha256(")),
)
NEW_RULES = RULES + (Rule(OPEN, r"\bopen\(", "info", "file object opened without a corresponding close"),)

BASE_FILES = {
    "app/views.py": (
        "import hashlib\n"
        "import pickle\n"
        "\n"
        "\n"
        "def load(blob):\n"
        "    data = pickle.loads(blob)\n"
        "    return data\n"
        "\n"
        "\n"
        "def digest(text):\n"
        "    return hashlib.md5(text.encode()).hexdigest()\n"
    ),
    "app/util.py": (
        "def read_config(path):\n"
        "    handle = open(path)\n"
        "    return handle.read()\n"
    ),
}
# The pull request adds `run`, with a blocking eval() and a commented pickle.loads() on added lines.
HEAD_FILES = {
    **BASE_FILES,
    "app/views.py": BASE_FILES["app/views.py"] + (
        "\n"
        "\n"
        "def run(expr, blob):\n"
        "    value = eval(expr)\n"
        "    cached = pickle.loads(blob)\n"
        "    return value, cached\n"
    ),
}
# The fix: eval() is gone; `load` and `run` are re-indented to two spaces.
FIX_FILES = {
    **BASE_FILES,
    "app/views.py": (
        "import hashlib\n"
        "import pickle\n"
        "\n"
        "\n"
        "def load(blob):\n"
        "  data = pickle.loads(blob)\n"
        "  return data\n"
        "\n"
        "\n"
        "def digest(text):\n"
        "    return hashlib.md5(text.encode()).hexdigest()\n"
        "\n"
        "\n"
        "def run(expr, blob):\n"
        "  value = expr\n"
        "  cached = pickle.loads(blob)\n"
        "  return value, cached\n"
    ),
}
EVAL_LINE = 15  # in HEAD_FILES["app/views.py"]
PICKLE_ADDED_LINE = 16


def scan(files: dict[str, str], rules: tuple[Rule, ...] = NEW_RULES) -> list[Finding]:
    """What Semgrep would report, fingerprinted from the files like `forge-app upload` does."""
    found = []
    for path in sorted(files):
        for number, line in enumerate(files[path].split("\n"), 1):
            for rule in rules:
                for m in re.finditer(rule.pattern, line):
                    fix = None
                    if rule.fix:
                        fix = Fix(number, number, (line.replace(rule.fix[0], rule.fix[1], 1),))
                    found.append(Finding(
                        rule_id=rule.id, path=path, start_line=number, end_line=number,
                        start_col=m.start() + 1, end_col=len(line) + 1, message=rule.message,
                        severity=rule.severity,  # type: ignore[arg-type]
                        rule=RuleInfo(cwe=("CWE-95",) if rule.id == EVAL else ()),
                        snippet=line, fix=fix, tool="semgrep"))
    return fingerprint_findings(found, files.get)


def upload_body(commit: str, findings: list[Finding], *, branch: str, pull_request: int | None,
                base_branch: str | None = "main") -> dict[str, Any]:
    return {"commit": commit, "branch": branch, "base_branch": base_branch, "pull_request": pull_request,
            "findings": [f.to_dict() for f in findings], "tools": ["semgrep"]}


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(fixture: str, *, repo: str = REPO, pr: int = PR, head: str | None = None, base: str | None = None,
             source_branch: str = SOURCE_BRANCH, destination_branch: str = "main", secret: str | None = WEBHOOK_SECRET,
             request_uuid: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A recorded delivery with its headers, adapted to this story (ids, hashes, branches) and signed."""
    doc = json.loads((WEBHOOKS / f"{fixture}.json").read_text())
    headers = json.loads((WEBHOOKS / f"{fixture}.headers.json").read_text())
    doc = copy.deepcopy(doc)
    doc["repository"]["full_name"] = repo
    pull = doc.get("pullrequest")
    if pull is not None:
        pull["id"] = pr
        for side, sha, branch in (("source", head, source_branch), ("destination", base, destination_branch)):
            pull[side]["repository"]["full_name"] = repo
            pull[side]["branch"]["name"] = branch
            if sha:
                pull[side]["commit"]["hash"] = sha[:12]  # Bitbucket sends 12 characters
    for change in (doc.get("push") or {}).get("changes") or []:
        if head and change.get("new"):
            change["new"]["name"] = destination_branch
            change["new"]["target"]["hash"] = head
    body = json.dumps(doc).encode()
    headers["X-Request-UUID"] = request_uuid or str(uuid.uuid4())
    if secret is not None:
        headers["X-Hub-Signature"] = sign(body, secret)
    return body, headers


def connect(client: Any, admin_headers: dict[str, str], fake: FakeBitbucket, kind: str,
            target: str | None = None) -> str:
    """Create a connection through the API (the verifier checks the token with the fake); returns the token."""
    token = f"bb-{kind}-access-token-0123456789"
    target = target or ("acme" if kind == "workspace" else REPO)
    fake.grant(token, kind, target)
    r = client.post("/api/v1/connections", headers=admin_headers, json={
        "forge": "bitbucket", "base_url": fake.base_url, "scope": kind, "target": target, "token": token,
        "webhook_secret": WEBHOOK_SECRET})
    assert r.status_code == 201, r.text
    assert "token" not in r.json() and "webhook_secret" not in r.json() and token not in r.text
    return token


def upload(client: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


@dataclass
class World:
    fake: FakeBitbucket
    base: str
    head: str
    fix: str


def build_world(fake: FakeBitbucket) -> World:
    fake.add_repo(REPO)
    fake.add_repo("acme/other")
    base = fake.add_commit(REPO, BASE_FILES)
    head = fake.add_commit(REPO, HEAD_FILES)
    fix = fake.add_commit(REPO, FIX_FILES)
    fake.open_pr(REPO, PR, source_branch=SOURCE_BRANCH, head=head, base=base)
    return World(fake, base, head, fix)

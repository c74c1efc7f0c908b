"""GitHub, from the outside only: `forge-app serve` as a process pointed at the fake GitHub,
signed webhook deliveries built from GitHub's real payloads, `forge-app token create` and
`forge-app upload` as subprocesses with GitHub Actions' variables and raw `semgrep scan --json`
output as written without login ("requires login" instead of code and fingerprint).

The story: the app is installed, a pull request is opened, CI uploads the base branch (push)
and then the pull request; the server's own worker publishes one review with inline comments
on exactly the findings the PR introduced (autofixes as suggestions) and a failing `forge-app`
check run. The server restarts with its key read from GITHUB_PRIVATE_KEY_PATH; the same webhook
redelivered and the same scan re-uploaded post nothing new; a rerequested check run is
published again with a freshly minted installation token. Every request the server made to the
fake is valid against GitHub's OpenAPI description.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.github.fake_github import FakeGitHub, ServerThread
from tests.github.gh_helpers import github_files, installation_event, payload, pull_request_event, sha

REPO = "octo/demo"
INSTALLATION = 31337
PR = 12
WEBHOOK_SECRET = "blackbox-webhook-secret-" + "0123456789abcdef"
ADMIN_TOKEN = "blackbox-admin-token-" + "0123456789abcdef"
SECRET_KEY = "blackbox-secret-key-0123456789abcdef-0123456789"
BASE_SHA = sha("blackbox:base")
HEAD_SHA = sha("blackbox:head")
MERGE_SHA = sha("blackbox:merge")  # GITHUB_SHA on pull_request events: a merge commit the PR never shows
DEADLINE = 15.0

EVAL = "python.lang.security.audit.eval-detected.eval-detected"
SYSTEM = "python.lang.security.audit.dangerous-system-call.dangerous-system-call"
MD5 = "python.lang.security.insecure-hash-algorithms.insecure-hash-algorithm-md5"
PRINT = "python.lang.best-practice.print-used"
POLICY = {"default": "comment", "rules": {EVAL: "block", PRINT: "monitor"}}

# (rule, regex whose match is the finding, severity, message, autofix replacing the match or None)
RULES = [
    (EVAL, r"\beval\((\w+)\)", "WARNING", "Detected the use of eval(). eval() can be dangerous if used to "
     "evaluate dynamic content.", lambda m: f"ast.literal_eval({m.group(1)})"),
    (SYSTEM, r"os\.system\(\w+\)", "ERROR", "Found dynamic content used in a system call.", None),
    (MD5, r"hashlib\.md5\((\w+)\)", "WARNING", "Detected MD5 hash algorithm which is considered insecure.",
     lambda m: f"hashlib.sha256({m.group(1)})"),
    (PRINT, r"\bprint\(\w+\)", "INFO", "print() left in code.", None),
]

BASE = {
    "app/__init__.py": "",
    "app/views.py": (
        "import os\n"
        "import subprocess\n"
        "\n"
        "\n"
        "def run(cmd):\n"
        "    os.system(cmd)\n"
        "\n"
        "\n"
        "def ping(host):\n"
        "    return subprocess.call([\"ping\", host])\n"
    ),
    "app/crypto.py": (
        "import hashlib\n"
        "\n"
        "\n"
        "def digest(data):\n"
        "    return hashlib.sha256(data).hexdigest()\n"
    ),
}
# The PR adds eval (blocking, with an autofix), MD5 (comment, with an autofix) and a print (monitor),
# and moves the known os.system finding down by inserting code above it: that one stays silent.
HEAD = {
    "app/__init__.py": "",
    "app/views.py": (
        "import ast\n"
        "import os\n"
        "import subprocess\n"
        "\n"
        "\n"
        "def parse(expr):\n"
        "    return eval(expr)\n"
        "\n"
        "\n"
        "def run(cmd):\n"
        "    os.system(cmd)\n"
        "\n"
        "\n"
        "def ping(host):\n"
        "    print(host)\n"
        "    return subprocess.call([\"ping\", host])\n"
    ),
    "app/crypto.py": (
        "import hashlib\n"
        "\n"
        "\n"
        "def digest(data):\n"
        "    return hashlib.sha256(data).hexdigest()\n"
        "\n"
        "\n"
        "def legacy_digest(data):\n"
        "    return hashlib.md5(data).hexdigest()\n"
    ),
}


# Semgrep, as `semgrep scan --json` writes it without login ----------------------------------------
def _position(text: str, index: int) -> dict[str, int]:
    before = text[:index]
    line = before.count("\n") + 1
    col = index - (before.rfind("\n") + 1) + 1
    return {"col": col, "line": line, "offset": len(before.encode())}


def semgrep_json(files: dict[str, str]) -> dict[str, Any]:
    results = []
    for path in sorted(files):
        text = files[path]
        for rule, pattern, severity, message, fix in RULES:
            for m in re.finditer(pattern, text):
                extra: dict[str, Any] = {
                    "engine_kind": "OSS", "fingerprint": "requires login", "is_ignored": False,
                    "lines": "requires login", "message": message,
                    "metadata": {"category": "security", "confidence": "LOW", "cwe": ["CWE-95"],
                                 "license": "Commons Clause License Condition v1.0[LGPL-2.1-only]",
                                 "source": f"https://semgrep.dev/r/{rule}", "technology": ["python"]},
                    "metavars": {}, "severity": severity, "validation_state": "NO_VALIDATOR",
                }
                if fix is not None:
                    extra["fix"] = fix(m)
                results.append({"check_id": rule, "end": _position(text, m.end()), "extra": extra, "path": path,
                                "start": _position(text, m.start())})
    results.sort(key=lambda r: (r["path"], r["start"]["offset"]))
    return {"errors": [], "interfile_languages_used": [], "paths": {"scanned": sorted(files)}, "results": results,
            "skipped_rules": [], "version": "1.85.0"}


def checkout(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / "semgrep.json").write_text(json.dumps(semgrep_json(files), indent=2))
    return root


# processes --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This process's environment without anything a CI or a developer's shell may have set."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "BITBUCKET_", "FORGE_APP_"))}


def cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forge_app.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def forge_app_server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "FORGE_APP_PUBLIC_URL": url}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "serve", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"forge-app serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"forge-app serve did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def deliver(server: str, event: str, body: bytes, delivery: str) -> httpx.Response:
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={digest}",
               "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/123abc",
               "X-GitHub-Hook-ID": "12312312", "X-GitHub-Hook-Installation-Target-ID": "4242",
               "X-GitHub-Hook-Installation-Target-Type": "integration"}
    return httpx.post(f"{server}/webhooks/github", content=body, headers=headers, timeout=10)


def queued_jobs(server: str) -> float:
    text = httpx.get(f"{server}/metrics", timeout=5).text
    m = re.search(r"^forge_app_jobs_queued (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def settle(server: str, fake: FakeGitHub, log: Path, until=lambda: True, quiet: float = 1.0) -> None:
    """Wait (with a deadline) until `until()` holds, no job is queued and the fake saw no request for `quiet` s."""
    deadline = time.monotonic() + DEADLINE
    seen, since = -1, time.monotonic()
    while True:
        count = len(fake.requests)
        if count != seen:
            seen, since = count, time.monotonic()
        if until() and queued_jobs(server) == 0 and time.monotonic() - since >= quiet:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the server's worker did not settle; requests to the fake:\n"
                                 + "\n".join(f"{r['method']} {r['path']} -> {r['status']}" for r in fake.requests)
                                 + f"\nserver log:\n{log.read_text()}")
        time.sleep(0.1)


# the test ---------------------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    try:
        yield fake
    finally:
        server.stop()


def pr_event(action: str) -> dict[str, Any]:
    event = pull_request_event(action, HEAD_SHA, number=PR, repo=REPO, installation_id=INSTALLATION)
    event["pull_request"]["base"]["sha"] = BASE_SHA
    event["pull_request"]["head"]["repo"]["full_name"] = REPO
    return event


def actions_env(tmp_path: Path, *, pr: bool) -> dict[str, str]:
    """What GitHub Actions sets for a push to main, or for a pull_request event."""
    env = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_REPOSITORY_OWNER": "octo",
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": "https://api.github.com",
           "GITHUB_RUN_ID": "4242", "GITHUB_RUN_NUMBER": "7", "GITHUB_ACTOR": "octocat", "GITHUB_WORKFLOW": "scan",
           "GITHUB_WORKSPACE": str(tmp_path)}
    if pr:
        event = tmp_path / "pull_request_event.json"
        event.write_text(json.dumps(pr_event("opened")))
        env.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event), GITHUB_SHA=MERGE_SHA,
                   GITHUB_REF=f"refs/pull/{PR}/merge", GITHUB_REF_NAME=f"{PR}/merge", GITHUB_REF_TYPE="branch",
                   GITHUB_HEAD_REF="feature", GITHUB_BASE_REF="main")
    else:
        push = payload("push/default")
        push.update(ref="refs/heads/main", after=BASE_SHA)
        event = tmp_path / "push_event.json"
        event.write_text(json.dumps(push))
        env.update(GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=str(event), GITHUB_SHA=BASE_SHA,
                   GITHUB_REF="refs/heads/main", GITHUB_REF_NAME="main", GITHUB_REF_TYPE="branch",
                   GITHUB_HEAD_REF="", GITHUB_BASE_REF="")
    return env


def upload(server: str, token: str, root: Path, tmp_path: Path, *, pr: bool) -> subprocess.CompletedProcess:
    env = {**clean_env(), **actions_env(tmp_path, pr=pr), "FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    return cli(["upload", "semgrep.json", "--timeout", "30"], env, root)


def test_github_app_story_from_the_outside(fake: FakeGitHub, tmp_path: Path) -> None:
    started = time.monotonic()
    fake.add_installation(INSTALLATION, "octo", [REPO])
    fake.set_pull(REPO, PR, HEAD_SHA, github_files(BASE, HEAD))
    fake.add_commit(REPO, BASE_SHA, BASE)
    fake.add_commit(REPO, HEAD_SHA, HEAD)
    assert "\n" in fake.private_key.strip()

    env = {**clean_env(), "GITHUB_APP_ID": str(fake.app_id), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "FORGE_APP_GITHUB_API_URL": fake.url, "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN,
           "FORGE_APP_SECRET_KEY": SECRET_KEY, "FORGE_APP_DATABASE": str(tmp_path / "data" / "forge-app.db")}
    (tmp_path / "data").mkdir()
    log = tmp_path / "serve.log"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base_root = checkout(tmp_path / "base", BASE)
    head_root = checkout(tmp_path / "head", HEAD)
    installed = json.dumps(installation_event("created", INSTALLATION, [REPO], "octo")).encode()
    opened = json.dumps(pr_event("opened")).encode()
    opened_delivery = str(uuid.uuid4())

    # 1. The server with the private key inline (real newlines in the variable).
    with forge_app_server({**env, "GITHUB_PRIVATE_KEY": fake.private_key}, log) as server:
        assert httpx.put(f"{server}/api/v1/policies", json=POLICY, headers=admin, timeout=10).status_code == 200
        assert httpx.get(f"{server}/api/v1/policies", headers=admin, timeout=10).json() == POLICY

        assert deliver(server, "installation", installed, str(uuid.uuid4())).status_code == 202
        assert deliver(server, "pull_request", opened, opened_delivery).status_code == 202

        minted = cli(["token", "create", "--repo", REPO], env, tmp_path)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip().splitlines()[-1]
        assert " " not in token and len(token) >= 20

        # CI on the push to main: the baseline. Nothing blocking there.
        base_run = upload(server, token, base_root, tmp_path, pr=False)
        assert base_run.returncode == 0, base_run.stdout + base_run.stderr
        base_url = base_run.stdout.strip().splitlines()[-1]
        assert re.fullmatch(re.escape(server) + r"/api/v1/scans/\d+", base_url), base_run.stdout

        # CI on the pull request: a blocking finding is new.
        pr_run = upload(server, token, head_root, tmp_path, pr=True)
        assert pr_run.returncode == 1, pr_run.stdout + pr_run.stderr
        pr_lines = pr_run.stdout.strip().splitlines()
        pr_url = pr_lines[-1]
        assert re.fullmatch(re.escape(server) + r"/api/v1/scans/\d+", pr_url), pr_run.stdout
        assert pr_url != base_url
        assert "result: blocking findings are new" in pr_lines[-2]

        scan = httpx.get(pr_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert (scan["repository"], scan["commit"], scan["branch"], scan["pull_request"]) == (
            REPO, HEAD_SHA, "feature", PR)  # the PR head, not GITHUB_SHA's merge commit
        assert scan["status"] == "done" and scan["blocking"] is True
        assert scan["counts"] == {"new": 3, "fixed": 0, "unchanged": 1}, scan

        def published() -> bool:
            runs = fake.runs_of(REPO, HEAD_SHA)
            return bool(fake.reviews_of(REPO, PR)) and bool(runs) and all(r["status"] == "completed" for r in runs)

        settle(server, fake, log, published)

    # One review on the head commit with exactly the two commentable new findings, autofixes as suggestions.
    reviews = fake.reviews_of(REPO, PR)
    assert len(reviews) == 1 and reviews[0]["commit_id"] == HEAD_SHA
    comments = sorted(fake.comments_of(REPO, PR), key=lambda c: (c["path"], c["line"]))
    placed = [(c["path"], c["line"]) for c in comments]
    assert placed == [("app/crypto.py", 9), ("app/views.py", 7)], placed
    crypto, views = comments
    assert EVAL in views["body"] and MD5 in crypto["body"]
    assert "```suggestion\n    return ast.literal_eval(expr)\n```" in views["body"], views["body"]
    assert "```suggestion\n    return hashlib.sha256(data).hexdigest()\n```" in crypto["body"], crypto["body"]
    assert all(SYSTEM not in c["body"] and PRINT not in c["body"] for c in comments)
    assert all(c["user"]["type"] == "Bot" for c in comments)

    runs = fake.runs_of(REPO, HEAD_SHA)
    assert len(runs) == 1
    run = runs[0]
    assert (run["name"], run["status"], run["conclusion"]) == ("forge-app", "completed", "failure")
    assert run["details_url"] == pr_url
    levels = {(a["title"], a["annotation_level"]) for a in run["annotations"]}
    assert {(EVAL, "failure"), (MD5, "warning")} <= levels
    assert not any(title == SYSTEM for title, _ in levels)
    # The uploader fingerprinted from the checkout: the server had no file to read from GitHub.
    assert not [r for r in fake.requests if "/contents/" in r["path"]]
    assert fake.violations == [], "requests GitHub would refuse:\n" + "\n".join(fake.violations)
    assert all(r["status"] < 400 for r in fake.requests), fake.requests

    # 2. Restarted, the key read from GITHUB_PRIVATE_KEY_PATH; every token issued so far revoked.
    key_file = tmp_path / "app.private-key.pem"
    key_file.write_text(fake.private_key)
    key_file.chmod(0o600)
    fake.expire_tokens()
    before = (len(fake.reviews), len(fake.comments), len(fake.check_runs), len(fake.issue_comments))
    restarted = fake.mark()
    with forge_app_server({**env, "GITHUB_PRIVATE_KEY_PATH": str(key_file)}, log) as server:
        again = deliver(server, "pull_request", opened, opened_delivery)  # a redelivery reuses the GUID
        assert again.status_code in (200, 202) and again.json().get("status") == "duplicate", again.text
        resync = json.dumps(pr_event("synchronize")).encode()  # the same head again, as a new delivery
        assert deliver(server, "pull_request", resync, str(uuid.uuid4())).status_code == 202

        rerun = upload(server, token, head_root, tmp_path, pr=True)
        assert rerun.returncode == 1, rerun.stdout + rerun.stderr
        rerun_url = rerun.stdout.strip().splitlines()[-1]
        assert re.fullmatch(re.escape(server) + r"/api/v1/scans/\d+", rerun_url), rerun.stdout
        settle(server, fake, log)
        assert (len(fake.reviews), len(fake.comments), len(fake.check_runs), len(fake.issue_comments)) == before, \
            [f"{r['method']} {r['path']}" for r in fake.requests]
        assert run["conclusion"] == "failure"

        # GitHub refused the revoked token once; the new one was minted with the JWT signed by the path key.
        tokens = fake.count("POST", rf"^/app/installations/{INSTALLATION}/access_tokens$", since=restarted)
        assert tokens >= 1 and fake.count(None, None, since=restarted) > tokens

        # A rerequested check run is published again, on a new run.
        rerequest = payload("check_run/rerequested")
        rerequest["check_run"].update(head_sha=HEAD_SHA, name="forge-app")
        rerequest["repository"].update(full_name=REPO, name="demo")
        rerequest["repository"]["owner"]["login"] = "octo"
        rerequest["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
        assert deliver(server, "check_run", json.dumps(rerequest).encode(), str(uuid.uuid4())).status_code == 202
        settle(server, fake, log, lambda: len(fake.runs_of(REPO, HEAD_SHA)) == 2
               and all(r["status"] == "completed" for r in fake.runs_of(REPO, HEAD_SHA)))
        first, second = sorted(fake.runs_of(REPO, HEAD_SHA), key=lambda r: r["id"])
        assert (first["conclusion"], second["conclusion"]) == ("failure", "failure")
        # A new run, annotated anew.
        assert {(a["title"], a["annotation_level"]) for a in second["annotations"]} == levels
        assert len(first["annotations"]) == len(levels)  # never appended twice
        assert (len(fake.reviews), len(fake.comments)) == before[:2]  # nothing said twice

    assert fake.violations == [], "requests GitHub would refuse:\n" + "\n".join(fake.violations)
    refused = [r for r in fake.since(restarted) if r["status"] >= 400]
    assert all(r["status"] == 401 for r in refused) and len(refused) <= tokens, refused  # the revoked token only
    print(f"\nblack-box GitHub story: {time.monotonic() - started:.1f} s, {len(fake.requests)} requests to GitHub")

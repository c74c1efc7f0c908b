"""The unmodified `semgrep ci` (1.182.0, from the package index) against `forge-app serve` on loopback,
with the fake GitHub behind it: the story a team sees after pointing SEMGREP_APP_URL and
SEMGREP_APP_TOKEN at forge-app.

A git repository made here: a full scan of main (the baseline); a diff-aware PR scan whose new blocking
finding makes the CLI exit 1 and whose moved pre-existing finding stays silent; a PR that only adds a
comment-mode finding (exit 0); the PR rescanned in full (nothing said twice); a bad token (the CLI's
authentication error, exit 13, nothing stored); another repository's token (refused, exit non-zero).
Every request the server made to the fake GitHub is valid against GitHub's OpenAPI description.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.blackbox.test_github_blackbox import clean_env, cli, deliver, forge_app_server, settle
from tests.github.fake_github import FakeGitHub, ServerThread
from tests.github.gh_helpers import github_files, installation_event, pull_request_event
from tests.notify.helpers import Receiver

pytestmark = pytest.mark.slow

REPO = "octo/demo"
OTHER_REPO = "octo/other"
INSTALLATION = 31337
ADMIN_TOKEN = "semgrep-ci-admin-token-" + "0123456789abcdef"
SECRET_KEY = "semgrep-ci-secret-key-0123456789abcdef-0123456789"
WEBHOOK_SECRET = "blackbox-webhook-secret-" + "0123456789abcdef"  # what deliver() signs with

RULES_YAML = """\
rules:
  - id: eval-detected
    pattern: eval($X)
    message: Detected the use of eval(); it runs arbitrary code.
    languages: [python]
    severity: WARNING
    fix: ast.literal_eval($X)
  - id: dangerous-system-call
    pattern: os.system($X)
    message: Found dynamic content used in a system call.
    languages: [python]
    severity: ERROR
  - id: insecure-hash-md5
    pattern: hashlib.md5($X)
    message: MD5 is not a secure hash.
    languages: [python]
    severity: WARNING
    fix: hashlib.sha256($X)
  - id: print-used
    pattern: print($X)
    message: print() left in code.
    languages: [python]
    severity: INFO
"""
EXTRA_RULE = """\
  - id: exec-detected
    pattern: exec($X)
    message: exec runs arbitrary code.
    languages: [python]
    severity: ERROR
"""
POLICY = {"default": "comment", "rules": {"eval-detected": "block", "print-used": "monitor"}}

BASE = {
    "app/__init__.py": "",
    "app/views.py": "import os\nimport subprocess\n\n\ndef run(cmd):\n    os.system(cmd)\n\n\n"
                    "def ping(host):\n    return subprocess.call([\"ping\", host])\n",
    "app/crypto.py": "import hashlib\n\n\ndef digest(data):\n    return hashlib.sha256(data).hexdigest()\n",
}
# PR 12: eval (block, autofix), md5 (comment, autofix), print (monitor); os.system moved down 6 lines.
PR12 = {
    **BASE,
    "app/views.py": "import ast\nimport os\nimport subprocess\n\n\ndef parse(expr):\n    return eval(expr)\n\n\n"
                    "def run(cmd):\n    os.system(cmd)\n\n\ndef ping(host):\n    print(host)\n"
                    "    return subprocess.call([\"ping\", host])\n",
    "app/crypto.py": BASE["app/crypto.py"] + "\n\ndef legacy_digest(data):\n    return hashlib.md5(data).hexdigest()\n",
}
# PR 13: only a comment-mode finding is new.
PR13 = {**BASE, "app/crypto.py": PR12["app/crypto.py"]}


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit_tree(root: Path, files: dict[str, str], message: str) -> str:
    for path in root.glob("app/*"):
        path.unlink()
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def semgrep_bin() -> str:
    found = Path(sys.executable).with_name("semgrep")
    return str(found) if found.exists() else (shutil.which("semgrep") or "semgrep")


def semgrep_ci(root: Path, server: str, token: str, home: Path, *, branch: str, pr: int | None = None,
               baseline: str | None = None, repo: str = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in clean_env().items() if not k.startswith("SEMGREP_")}
    env.update(HOME=str(home), SEMGREP_APP_URL=server, SEMGREP_APP_TOKEN=token, SEMGREP_REPO_NAME=repo,
               SEMGREP_REPO_URL=f"https://github.com/{repo}", SEMGREP_BRANCH=branch,
               SEMGREP_ENABLE_VERSION_CHECK="0", SEMGREP_SEND_METRICS="off",
               SEMGREP_JOB_URL="https://ci.example/jobs/7")
    if pr is not None:
        env["SEMGREP_PR_ID"] = str(pr)
    if baseline is not None:
        env["SEMGREP_BASELINE_REF"] = baseline
    return subprocess.run([semgrep_bin(), "ci", "--oss-only", "--metrics=off", "--no-suppress-errors"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    try:
        yield fake
    finally:
        server.stop()


def test_semgrep_ci_against_forge_app(fake: FakeGitHub, tmp_path: Path) -> None:
    started = time.monotonic()
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    base_sha = commit_tree(root, BASE, "base")
    git(root, "checkout", "-q", "-b", "feature")
    pr12_sha = commit_tree(root, PR12, "feature: parse, legacy digest")
    git(root, "checkout", "-q", "main")
    git(root, "checkout", "-q", "-b", "digest-only")
    pr13_sha = commit_tree(root, PR13, "legacy digest")
    git(root, "checkout", "-q", "main")

    fake.add_installation(INSTALLATION, "octo", [REPO])
    fake.set_pull(REPO, 12, pr12_sha, github_files(BASE, PR12))
    fake.set_pull(REPO, 13, pr13_sha, github_files(BASE, PR13), head_ref="digest-only")
    for sha, files in ((base_sha, BASE), (pr12_sha, PR12), (pr13_sha, PR13)):
        fake.add_commit(REPO, sha, files)

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "python.yml").write_text(RULES_YAML)
    db = tmp_path / "data" / "forge-app.db"
    env = {**clean_env(), "GITHUB_APP_ID": str(fake.app_id), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "GITHUB_PRIVATE_KEY": fake.private_key, "FORGE_APP_GITHUB_API_URL": fake.url,
           "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN, "FORGE_APP_SECRET_KEY": SECRET_KEY,
           "FORGE_APP_DATABASE": str(db), "FORGE_APP_RULES": str(rules), "FORGE_APP_ALLOW_PRIVATE_TARGETS": "1"}
    db.parent.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "serve.log"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    with Receiver() as receiver, forge_app_server(env, log) as server:
        assert httpx.put(f"{server}/api/v1/policies", json=POLICY, headers=admin, timeout=10).status_code == 200
        hook = httpx.post(f"{server}/api/v1/integrations",
                          json={"type": "webhook", "name": "SIEM", "url": receiver.url}, headers=admin, timeout=10)
        assert hook.status_code == 201, hook.text
        installed = json.dumps(installation_event("created", INSTALLATION, [REPO], "octo")).encode()
        assert deliver(server, "installation", installed, str(uuid.uuid4())).status_code == 202
        for number, sha in ((12, pr12_sha), (13, pr13_sha)):
            event = pull_request_event("opened", sha, number=number, repo=REPO, installation_id=INSTALLATION)
            event["pull_request"]["base"]["sha"] = base_sha
            assert deliver(server, "pull_request", json.dumps(event).encode(), str(uuid.uuid4())).status_code == 202
        token = cli(["token", "create", "--repo", REPO], env, tmp_path).stdout.strip().splitlines()[-1]
        other = cli(["token", "create", "--repo", OTHER_REPO], env, tmp_path).stdout.strip().splitlines()[-1]
        bearer = {"Authorization": f"Bearer {token}"}

        def scan_of(run_output: subprocess.CompletedProcess) -> dict[str, Any]:
            scan_id = rows(db, "SELECT scan_id FROM semgrep_ci_runs ORDER BY id DESC LIMIT 1")[0][0]
            return httpx.get(f"{server}/api/v1/scans/{scan_id}?findings=all", headers=bearer, timeout=10).json()

        # 1. A bad token: the CLI's own authentication error, exit 13, nothing stored.
        bad = semgrep_ci(root, server, "fa_upload_not-a-token", home, branch="main")
        assert bad.returncode == 13, bad.stdout + bad.stderr
        assert "Invalid API Key" in bad.stdout + bad.stderr
        # 2. Another repository's token: refused with the reason, nothing stored.
        wrong = semgrep_ci(root, server, other, home, branch="main")
        assert wrong.returncode not in (0, 1), wrong.stdout + wrong.stderr
        assert f"belongs to {OTHER_REPO}, not to {REPO}" in wrong.stdout + wrong.stderr
        assert rows(db, "SELECT COUNT(*) FROM semgrep_ci_runs")[0][0] == 0
        assert rows(db, "SELECT COUNT(*) FROM scans")[0][0] == 0

        # 3. Full scan of main: the baseline. Nothing blocking there.
        full = semgrep_ci(root, server, token, home, branch="main")
        assert full.returncode == 0, full.stdout + full.stderr
        main_scan = scan_of(full)
        assert (main_scan["branch"], main_scan["commit"], main_scan["pull_request"]) == ("main", base_sha, None)
        assert main_scan["status"] == "done" and main_scan["counts"]["new"] == 1, main_scan
        assert [f["rule_id"] for f in main_scan["findings"]] == ["dangerous-system-call"]

        # 4. Diff-aware scan of PR 12: the new blocking eval makes the CLI exit 1.
        git(root, "checkout", "-q", "feature")
        pr12 = semgrep_ci(root, server, token, home, branch="feature", pr=12, baseline=base_sha)
        assert pr12.returncode == 1, pr12.stdout + pr12.stderr
        scan12 = scan_of(pr12)
        assert (scan12["commit"], scan12["pull_request"], scan12["blocking"]) == (pr12_sha, 12, True), scan12
        new = {(f["rule_id"], f["start_line"]) for f in scan12["findings"] if f["status"] == "new"}
        assert new == {("eval-detected", 7), ("insecure-hash-md5", 9), ("print-used", 15)}, scan12["findings"]
        # The pre-existing os.system is carried as unchanged (a diff-aware scan never calls it fixed).
        assert scan12["counts"]["fixed"] == 0
        moved = [f for f in scan12["findings"] if f["rule_id"] == "dangerous-system-call"]
        assert [(f["status"], f["first_seen"]) for f in moved] == [("unchanged", False)], moved

        def published(number: int, sha: str) -> Any:
            runs = fake.runs_of(REPO, sha)
            return lambda: bool(fake.comments_of(REPO, number)) and bool(runs) and \
                all(r["status"] == "completed" for r in fake.runs_of(REPO, sha))

        settle(server, fake, log, published(12, pr12_sha))

        # 5. PR 13 only adds a comment-mode finding: exit 0, commented.
        git(root, "checkout", "-q", "digest-only")
        pr13 = semgrep_ci(root, server, token, home, branch="digest-only", pr=13, baseline=base_sha)
        assert pr13.returncode == 0, pr13.stdout + pr13.stderr
        settle(server, fake, log, published(13, pr13_sha))

        # 6. PR 12 rescanned in full (the CLI sends every finding, the moved one too): nothing new on the PR.
        git(root, "checkout", "-q", "feature")
        comments_before = len(fake.comments)
        again = semgrep_ci(root, server, token, home, branch="feature", pr=12)
        assert again.returncode == 1, again.stdout + again.stderr  # the CLI blocks on eval itself
        rescan = scan_of(again)
        moved = [f for f in rescan["findings"] if f["rule_id"] == "dangerous-system-call"]
        assert [(f["status"], f["start_line"], f["first_seen"]) for f in moved] == [("unchanged", 11, False)], moved
        settle(server, fake, log, lambda: len(receiver.scan_posts()) == 4)
        assert len(fake.comments) == comments_before
        # Each finding notified once, when first detected: the moved os.system on main only.
        notified = [(item["semgrep_finding"]["check_id"], item["semgrep_finding"]["ref"])
                    for post in receiver.findings_posts() for item in post.json()]
        assert sorted(notified) == [("dangerous-system-call", "refs/heads/main"),
                                    ("eval-detected", "refs/heads/feature"),
                                    ("insecure-hash-md5", "refs/heads/feature"), ("print-used", "refs/heads/feature")]

        scans = [post.json()["semgrep_scan"] for post in receiver.scan_posts()]
        assert {s["ci_job_url"] for s in scans} == {"https://ci.example/jobs/7"}  # from project_metadata
        assert [s["pull_request_id"] for s in scans] == ["", "12", "13", "12"], scans

        # 7. FORGE_APP_RULES edited and the server sent SIGHUP: the new rule is served.
        (rules / "python.yml").write_text(RULES_YAML + EXTRA_RULE)
        pid = int(re.search(r"Started server process \[(\d+)\]", log.read_text()).group(1))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "exec-detected" not in httpx.get(f"{server}/api/v1/rules", headers=admin, timeout=10).text:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    # Everything the CLI asked for (server access log): exactly the documented conversation.
    asked = {re.sub(r"/scans/[^/ ]+/", "/scans/{id}/", m) for m in
             re.findall(r'"((?:GET|POST|PUT|DELETE) /api/(?:cli|agent)/\S+) HTTP', log.read_text())}
    assert asked == {"POST /api/cli/v2/scans", "GET /api/cli/v2/scans/{id}/config",
                     "POST /api/agent/scans/{id}/results", "POST /api/agent/scans/{id}/complete"}, asked

    comments = sorted(fake.comments_of(REPO, 12), key=lambda c: (c["path"], c["line"]))
    assert [(c["path"], c["line"]) for c in comments] == [("app/crypto.py", 9), ("app/views.py", 7)], comments
    crypto, views = comments
    assert "eval-detected" in views["body"] and "insecure-hash-md5" in crypto["body"]
    assert "```suggestion\n    return ast.literal_eval(expr)\n```" in views["body"], views["body"]
    assert "```suggestion\n    return hashlib.sha256(data).hexdigest()\n```" in crypto["body"], crypto["body"]
    assert all("dangerous-system-call" not in c["body"] and "print-used" not in c["body"] for c in comments)
    assert [r["conclusion"] for r in fake.runs_of(REPO, pr12_sha)][-1] == "failure"
    [only] = fake.comments_of(REPO, 13)
    assert (only["path"], only["line"]) == ("app/crypto.py", 9) and "insecure-hash-md5" in only["body"]
    assert [r["conclusion"] for r in fake.runs_of(REPO, pr13_sha)][-1] == "success"
    assert fake.violations == [], "requests GitHub would refuse:\n" + "\n".join(fake.violations)
    print(f"\nsemgrep ci story: {time.monotonic() - started:.1f} s")

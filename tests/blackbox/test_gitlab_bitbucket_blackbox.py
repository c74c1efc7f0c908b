"""GitLab and Bitbucket, black box: everything goes through the public contract.

`forge-app serve` runs as a separate process, configured only with environment variables;
the fake GitLab and fake Bitbucket (tests/gitlab/fake_gitlab.py, tests/bitbucket/fake_bitbucket.py)
run on loopback ports and validate every request against the API descriptions in
tests/fixtures. Connections and policies are created over the admin API, webhooks are the
recorded deliveries with their headers (signed / with the secret token), upload tokens come
from `forge-app token create` and scans from `forge-app upload` subprocesses reading a report
shaped exactly like `semgrep scan --json` output (with Semgrep's "requires login"
placeholders, so the uploader must read the code from the checkout) and the CI's own
variables. The server's in-process worker publishes; the test polls the fakes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bitbucket.bitbucket_scenario import delivery as bitbucket_delivery
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.gitlab.fake_gitlab import FakeGitLab, FakeServer
from tests.gitlab.gitlab_helpers import adapt, delivery_headers, fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "blackbox-admin-token-0123456789abcdef"
SECRET_KEY = "blackbox-secret-key-0123456789abcdef-0123456789"
CI_PREFIXES = ("GITHUB_", "CI_", "GITLAB_", "BITBUCKET_", "FORGE_APP_")
DEADLINE = 15.0

# ---------------------------------------------------------------------------------- Semgrep


class Rule:
    """A stand-in for one Semgrep rule: a regex over the whole file, with an optional autofix."""

    def __init__(self, rule_id: str, pattern: str, severity: str, message: str,
                 fix: Callable[[str], str] | None = None, cwe: str | None = None, flags: int = 0) -> None:
        self.id, self.re, self.severity, self.message, self.fix = rule_id, re.compile(pattern, flags), severity, \
            message, fix
        self.metadata: dict[str, Any] = {"category": "security", "confidence": "MEDIUM", "likelihood": "LOW",
                                         "impact": "MEDIUM", "technology": ["python"],
                                         "source": f"https://semgrep.dev/r/{rule_id}",
                                         "shortlink": f"https://sg.run/{rule_id.rsplit('.', 1)[-1][:5]}"}
        if cwe:
            self.metadata["cwe"] = [cwe]


def _pos(text: str, offset: int) -> dict[str, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return {"col": col, "line": line, "offset": offset}


def semgrep_json(files: dict[str, str], rules: list[Rule]) -> dict[str, Any]:
    """What `semgrep scan --json` prints when not logged in: code withheld ("requires login")."""
    results = []
    for path in sorted(files):
        text = files[path]
        for rule in rules:
            for m in rule.re.finditer(text):
                extra: dict[str, Any] = {
                    "engine_kind": "OSS", "fingerprint": "requires login", "is_ignored": False,
                    "lines": "requires login", "message": rule.message, "metadata": rule.metadata, "metavars": {},
                    "severity": rule.severity, "validation_state": "NO_VALIDATOR"}
                if rule.fix:
                    extra["fix"] = rule.fix(m.group(0))
                results.append({"check_id": rule.id, "end": _pos(text, m.end()), "extra": extra, "path": path,
                                "start": _pos(text, m.start())})
    results.sort(key=lambda r: (r["path"], r["start"]["offset"], r["check_id"]))
    return {"errors": [], "interfile_languages_used": [], "paths": {"scanned": sorted(files)}, "results": results,
            "skipped_rules": [], "version": "1.85.0"}


def checkout(tmp: Path, name: str, files: dict[str, str], rules: list[Rule]) -> Path:
    root = tmp / name
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "semgrep.json").write_text(json.dumps(semgrep_json(files, rules), indent=2))
    return root


# ---------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CI_PREFIXES)}
    env.update(extra)
    return env


class Server:
    def __init__(self, tmp: Path, bitbucket_api_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        self.env = clean_env(FORGE_APP_ADMIN_TOKEN=ADMIN_TOKEN, FORGE_APP_SECRET_KEY=SECRET_KEY,
                             FORGE_APP_DATABASE=str(tmp / "forge-app.db"), FORGE_APP_PUBLIC_URL=self.url,
                             FORGE_APP_BITBUCKET_API_URL=bitbucket_api_url)
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "serve", "--port",
                                          str(self.port)], env=self.env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, f"forge-app serve exited:\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"forge-app serve did not answer /healthz:\n{self.log_tail()}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log_tail(self, n: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def cli(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forge_app.cli.main", *args],
                              env={**self.env, **(env or {})}, cwd=cwd or ROOT, capture_output=True, text=True,
                              timeout=60)

    def token(self, forge: str, repo: str) -> str:
        done = self.cli("token", "create", "--repo", repo, "--forge", forge)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def upload(self, root: Path, token: str, ci: dict[str, str]) -> tuple[int, dict[str, Any], str]:
        """`forge-app upload semgrep.json` in a CI job: CI variables plus FORGE_APP_URL/TOKEN only."""
        env = clean_env(FORGE_APP_URL=self.url, FORGE_APP_TOKEN=token, **ci)
        done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "upload", "semgrep.json"], env=env,
                              cwd=root, capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 1), f"exit {done.returncode}: {done.stderr}\n{done.stdout}"
        last = done.stdout.strip().splitlines()[-1]
        m = re.fullmatch(re.escape(self.url) + r"/api/v1/scans/(\d+)", last)
        assert m, f"last stdout line is not <server>/api/v1/scans/<id>: {last!r}"
        scan = httpx.get(last, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert scan.status_code == 200, scan.text
        return done.returncode, scan.json(), done.stdout

    def connect(self, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/api/v1/connections", json=body, headers=self.admin, timeout=30)
        assert r.status_code == 201, r.text
        assert "token" not in r.json() and "webhook_secret" not in r.json()
        assert body["token"] not in r.text and body["webhook_secret"] not in r.text
        listed = httpx.get(f"{self.url}/api/v1/connections", headers=self.admin, timeout=10)
        assert listed.status_code == 200
        assert body["token"] not in listed.text and body["webhook_secret"] not in listed.text
        for c in listed.json():
            assert "token" not in c and "webhook_secret" not in c
        assert r.json()["id"] in [c["id"] for c in listed.json()]
        return r.json()

    def queued(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        m = re.search(r"^forge_app_jobs_queued (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def failed_jobs(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        m = re.search(r"^forge_app_jobs_failed (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def settle(self, activity: Callable[[], int], quiet: float = 0.6) -> None:
        """Until no job is queued and the fake has seen no request for `quiet` seconds."""
        deadline = time.monotonic() + DEADLINE
        last, since = activity(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = activity()
            if now != last:
                last, since = now, time.monotonic()
            elif self.queued() == 0 and time.monotonic() - since >= quiet:
                return
        raise AssertionError(f"the server never settled:\n{self.log_tail()}")


def wait_for(what: str, check: Callable[[], Any], server: Server) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n--- server log ---\n{server.log_tail()}")


@pytest.fixture(scope="module")
def forges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, FakeGitLab, FakeBitbucket]]:
    tmp = tmp_path_factory.mktemp("blackbox-gl-bb")
    gitlab = FakeGitLab()
    gitlab_server = FakeServer(gitlab).start()
    bitbucket = FakeBitbucket()
    try:
        with bitbucket.running():
            server = Server(tmp, bitbucket.base_url)
            try:
                server.start()
                r = httpx.put(f"{server.url}/api/v1/policies", headers=server.admin, timeout=10, json={
                    "default": "comment", "rules": {**GITLAB_POLICY, **BITBUCKET_POLICY}})
                assert r.status_code == 200, r.text
                yield server, gitlab, bitbucket
            finally:
                server.stop()
                print("--- forge-app serve log (tail) ---\n" + server.log_tail())
    finally:
        gitlab_server.stop()


# ---------------------------------------------------------------------------------- GitLab

GL_PROJECT, GL_PROJECT_ID, GL_IID = "acme/shop", 321, 12
GL_TOKEN, GL_SECRET = "glpat-blackbox-0123456789", "gitlab-blackbox-webhook-secret"
GL_BRANCH = "feature/reports"
TASKS = "app/tasks.py"
GL_MAIN = """\
\"\"\"Background tasks for the shop.\"\"\"

import subprocess

import yaml


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load_settings(path):
    with open(path) as fh:
        return fh.read()


def ping(host):
    return run("ping -c 1 " + host)
"""
GL_HEAD = """\
\"\"\"Background tasks for the shop.\"\"\"

import subprocess

import requests

import yaml


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load_settings(path):
    with open(path) as fh:
        return yaml.load(fh)


def ping(host):
    print("pinging", host)
    return run("ping -c 1 " + host)


def fetch(url):
    return requests.get(
        url,
        verify=False,
    )
"""
GL_BASE_RULES = [Rule("python.subprocess-shell-true", r"subprocess\.call\(cmd, shell=True\)", "WARNING",
                      "subprocess with shell=True", cwe="CWE-78: OS Command Injection")]
GL_HEAD_RULES = GL_BASE_RULES + [
    Rule("python.yaml-load", r"yaml\.load\(fh\)", "ERROR", "yaml.load can run arbitrary code; use yaml.safe_load",
         fix=lambda code: code.replace("yaml.load(", "yaml.safe_load(")),
    Rule("python.command-injection", r'run\("ping -c 1 " \+ host\)', "WARNING", "user input reaches a shell"),
    Rule("python.debug-print", r'print\("pinging", host\)', "INFO", "debug print"),
    Rule("python.requests-verify-false", r"requests\.get\(\n.*?\n    \)", "WARNING",
         "TLS verification is disabled", flags=re.S),
]
GITLAB_POLICY = {"python.yaml-load": "block", "python.debug-print": "monitor"}


def gitlab_ci(sha: str, *, mr: bool, base_sha: str = "") -> dict[str, str]:
    env = {"GITLAB_CI": "true", "CI": "true", "CI_SERVER_URL": "https://gitlab.example.com",
           "CI_PROJECT_PATH": GL_PROJECT, "CI_PROJECT_ID": str(GL_PROJECT_ID), "CI_DEFAULT_BRANCH": "main",
           "CI_COMMIT_SHA": sha, "CI_COMMIT_TITLE": "work", "CI_COMMIT_AUTHOR": "Dev Eloper <dev@example.com>",
           "CI_JOB_URL": "https://gitlab.example.com/acme/shop/-/jobs/4242", "GITLAB_USER_LOGIN": "dev"}
    if mr:
        env.update(CI_PIPELINE_SOURCE="merge_request_event", CI_COMMIT_REF_NAME=GL_BRANCH,
                   CI_MERGE_REQUEST_IID=str(GL_IID), CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=GL_BRANCH,
                   CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main", CI_MERGE_REQUEST_DIFF_BASE_SHA=base_sha,
                   CI_MERGE_REQUEST_SOURCE_BRANCH_SHA="",  # empty outside merged-results pipelines
                   CI_MERGE_REQUEST_TITLE="Reports and fetch")
    else:
        env.update(CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main")
    return env


def test_gitlab_merge_request_black_box(forges, tmp_path: Path) -> None:
    server, gitlab, _ = forges
    gitlab.add_token(GL_TOKEN, ["api"])
    project = gitlab.add_project(GL_PROJECT, GL_PROJECT_ID)
    main_sha = gitlab.commit(project, {TASKS: GL_MAIN}, "main")
    head_sha = gitlab.commit(project, {TASKS: GL_HEAD}, "reports and fetch")
    mr = gitlab.open_mr(project, GL_IID, main_sha, head_sha, source_branch=GL_BRANCH)

    server.connect({"forge": "gitlab", "base_url": gitlab.url, "scope": "project", "target": GL_PROJECT,
                    "token": GL_TOKEN, "webhook_secret": GL_SECRET})
    upload_token = server.token("gitlab", GL_PROJECT)

    # The base branch's pipeline (push to main) uploads the baseline.
    code, base, _ = server.upload(checkout(tmp_path, "main", {TASKS: GL_MAIN}, GL_BASE_RULES), upload_token,
                                  gitlab_ci(main_sha, mr=False))
    assert code == 0 and base["pull_request"] is None and base["branch"] == "main"

    # The MR is opened: GitLab delivers the webhook with the secret token.
    doc = adapt(fixture("captured/merge_request.open"), project=GL_PROJECT, project_id=GL_PROJECT_ID, iid=GL_IID,
                head=head_sha)
    body = json.dumps(doc).encode()
    headers = delivery_headers(doc, GL_SECRET, key="blackbox-open-1")
    wrong = httpx.post(f"{server.url}/webhooks/gitlab", content=body,
                       headers={**headers, "X-Gitlab-Token": "not-the-secret"}, timeout=10)
    assert wrong.status_code == 401, wrong.text
    r = httpx.post(f"{server.url}/webhooks/gitlab", content=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text

    # The MR pipeline uploads its scan: a new block finding, exit 1.
    head_root = checkout(tmp_path, "head", {TASKS: GL_HEAD}, GL_HEAD_RULES)
    code, scan, stdout = server.upload(head_root, upload_token, gitlab_ci(head_sha, mr=True, base_sha=main_sha))
    assert code == 1, stdout
    assert (scan["repository"], scan["commit"], scan["branch"], scan["pull_request"]) == (
        GL_PROJECT, head_sha, GL_BRANCH, GL_IID)
    assert scan["counts"] == {"new": 4, "fixed": 0, "unchanged": 1} and scan["blocking"] is True

    def status_done() -> Any:
        history = gitlab.statuses.get((GL_PROJECT_ID, head_sha)) or []
        return history if history and history[-1]["status"] not in ("pending", "running") else None

    [status] = wait_for("the GitLab commit status", status_done, server)
    server.settle(lambda: len(gitlab.requests))
    assert status["history"] == ["failed"] and status["name"] == "forge-app"  # no "running": budget
    assert status["target_url"] == f"{server.url}/api/v1/scans/{scan['id']}"
    assert "1 blocking" in status["description"]

    # Diff discussions only for the introduced findings on added lines; a suggestion for the autofix.
    threads = [d for d in mr.discussions if not d["individual_note"]]
    by_rule = {re.search(r"`(python\.[a-z-]+)`", d["notes"][0]["body"]).group(1): d for d in threads}
    assert sorted(by_rule) == ["python.requests-verify-false", "python.yaml-load"], [
        d["notes"][0]["body"] for d in mr.discussions]
    yaml_note = by_rule["python.yaml-load"]["notes"][0]
    assert "```suggestion:-0+0\n        return yaml.safe_load(fh)\n```" in yaml_note["body"], yaml_note["body"]
    assert yaml_note["position"]["new_line"] == GL_HEAD.splitlines().index("        return yaml.load(fh)") + 1
    assert yaml_note["position"]["head_sha"] == head_sha
    verify = by_rule["python.requests-verify-false"]["notes"][0]["position"]
    assert verify["line_range"]["start"]["new_line"] == verify["new_line"] - 3
    # The new finding on an unchanged line is in the one summary note; monitor and base findings nowhere.
    summaries = [d for d in mr.discussions if d["individual_note"]]
    assert len(summaries) == 1 and "python.command-injection" in summaries[0]["notes"][0]["body"]
    every_body = "\n".join(n["body"] for d in mr.discussions for n in d["notes"])
    assert "python.debug-print" not in every_body and "python.subprocess-shell-true" not in every_body

    # Redelivery and re-upload change nothing on the MR.
    before = json.dumps(mr.discussions, sort_keys=True)
    again = httpx.post(f"{server.url}/webhooks/gitlab", content=body, headers=headers, timeout=10)
    assert again.status_code == 202 and again.json()["status"] == "duplicate", again.text
    mark = len(gitlab.requests)
    code, rescan, _ = server.upload(head_root, upload_token, gitlab_ci(head_sha, mr=True, base_sha=main_sha))
    assert code == 1 and rescan["counts"] == scan["counts"] and rescan["id"] != scan["id"]
    server.settle(lambda: len(gitlab.requests))
    writes = [(r.method, r.path) for r in gitlab.requests[mark:] if r.method != "GET" and "/statuses/" not in r.path]
    assert all(m == "PUT" and p.endswith(f"/notes/{summaries[0]['notes'][0]['id']}") for m, p in writes), writes
    after = json.loads(json.dumps(mr.discussions, sort_keys=True))
    assert [(d["id"], len(d["notes"])) for d in after] == [(d["id"], len(d["notes"])) for d in json.loads(before)]
    assert all(h["status"] == "failed" for h in gitlab.statuses[(GL_PROJECT_ID, head_sha)])

    assert gitlab.violations == [], gitlab.violations
    assert gitlab.outside_contract == []
    assert server.failed_jobs() == 0, server.log_tail()


# ---------------------------------------------------------------------------------- Bitbucket

BB_PR, BB_BRANCH = 7, "feature/risky"
BB_SECRET = "bitbucket-blackbox-webhook-secret"
EVAL = "python.lang.security.audit.eval-detected"
PICKLE = "python.lang.security.deserialization.avoid-pickle"
MD5 = "python.lang.security.insecure-hash-algorithms.insecure-hash-algorithm-md5"
OPEN = "python.lang.best-practice.open-never-closed"
BITBUCKET_POLICY = {EVAL: "block"}
BB_BASE = {
    "app/views.py": "import hashlib\nimport pickle\n\n\ndef load(blob):\n    data = pickle.loads(blob)\n"
                    "    return data\n\n\ndef digest(text):\n    return hashlib.md5(text.encode()).hexdigest()\n",
    "app/util.py": "def read_config(path):\n    handle = open(path)\n    return handle.read()\n",
}
BB_HEAD = {**BB_BASE, "app/views.py": BB_BASE["app/views.py"] + (
    "\n\ndef run(expr, blob):\n    value = eval(expr)\n    cached = pickle.loads(blob)\n    return value, cached\n")}
BB_BASE_RULES = [
    Rule(PICKLE, r"pickle\.loads\(blob\)", "WARNING", "Avoid using `pickle`.", cwe="CWE-502"),
    Rule(MD5, r"hashlib\.md5\(text\.encode\(\)\)", "WARNING", "Detected MD5 hash algorithm.", cwe="CWE-327",
         fix=lambda code: code.replace("md5", "sha256")),
]
BB_HEAD_RULES = BB_BASE_RULES + [
    Rule(EVAL, r"\beval\(expr\)", "ERROR", "Detected the use of eval().", cwe="CWE-95",
         fix=lambda code: "ast.literal_eval(expr)"),
    Rule(OPEN, r"open\(path\)", "INFO", "file object opened without a corresponding close"),
]


def bitbucket_ci(repo: str, sha: str, *, pr: bool) -> dict[str, str]:
    workspace, slug = repo.split("/")
    env = {"CI": "true", "BITBUCKET_REPO_FULL_NAME": repo, "BITBUCKET_WORKSPACE": workspace,
           "BITBUCKET_REPO_SLUG": slug, "BITBUCKET_COMMIT": sha, "BITBUCKET_BUILD_NUMBER": "17",
           "BITBUCKET_GIT_HTTP_ORIGIN": f"http://bitbucket.org/{repo}", "BITBUCKET_CLONE_DIR": "/opt/atlassian/build",
           "BITBUCKET_BRANCH": BB_BRANCH if pr else "main"}
    if pr:
        env.update(BITBUCKET_PR_ID=str(BB_PR), BITBUCKET_PR_DESTINATION_BRANCH="main")
    return env


@pytest.mark.parametrize("scope", ["repository", "workspace"])
def test_bitbucket_pull_request_black_box(forges, tmp_path: Path, scope: str) -> None:
    server, _, bitbucket = forges
    repo = "acme/widgets" if scope == "repository" else "globex/widgets"
    token = f"bb-{scope}-blackbox-access-token-0123456789"
    bitbucket.add_repo(repo)
    base_sha = bitbucket.add_commit(repo, BB_BASE)
    head_sha = bitbucket.add_commit(repo, BB_HEAD)
    bitbucket.open_pr(repo, BB_PR, source_branch=BB_BRANCH, head=head_sha, base=base_sha)
    bitbucket.grant(token, scope, repo if scope == "repository" else repo.split("/")[0])
    outside_before = list(bitbucket.outside_description)

    # No base_url: it defaults to FORGE_APP_BITBUCKET_API_URL (the fake).
    conn = server.connect({"forge": "bitbucket", "scope": scope, "token": token, "webhook_secret": BB_SECRET,
                           "target": repo if scope == "repository" else repo.split("/")[0]})
    assert conn["base_url"] == bitbucket.base_url
    upload_token = server.token("bitbucket", repo)

    code, base, _ = server.upload(checkout(tmp_path, "main", BB_BASE, BB_BASE_RULES), upload_token,
                                  bitbucket_ci(repo, base_sha, pr=False))
    assert code == 0 and base["pull_request"] is None

    body, headers = bitbucket_delivery("pullrequest_created", repo=repo, pr=BB_PR, head=head_sha, base=base_sha,
                                       source_branch=BB_BRANCH, secret=BB_SECRET)
    bad = httpx.post(f"{server.url}/webhooks/bitbucket", content=body,
                     headers={**headers, "X-Hub-Signature": "sha256=" + "0" * 64}, timeout=10)
    assert bad.status_code == 401, bad.text
    r = httpx.post(f"{server.url}/webhooks/bitbucket", content=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text

    head_root = checkout(tmp_path, "head", BB_HEAD, BB_HEAD_RULES)
    code, scan, stdout = server.upload(head_root, upload_token, bitbucket_ci(repo, head_sha, pr=True))
    assert code == 1, stdout
    assert (scan["repository"], scan["commit"], scan["branch"], scan["pull_request"]) == (
        repo, head_sha, BB_BRANCH, BB_PR)
    assert scan["counts"] == {"new": 3, "fixed": 0, "unchanged": 2} and scan["blocking"] is True

    def final_status() -> Any:
        status = bitbucket.statuses.get((repo, head_sha), {}).get("forge-app")
        return status if status and status["state"] != "INPROGRESS" else None

    status = wait_for("the Bitbucket build status", final_status, server)
    server.settle(lambda: len(bitbucket.seen))
    assert status["state"] == "FAILED" and status["refname"] == BB_BRANCH
    assert status["url"] == f"{server.url}/api/v1/scans/{scan['id']}"
    history = [(s["key"], s["state"]) for name, sha, s in bitbucket.status_history if (name, sha) == (repo, head_sha)]
    assert history == [("forge-app", "FAILED")], history  # no INPROGRESS: that request buys a comment
    report = bitbucket.reports[(repo, head_sha, "forge-app")]
    assert report["result"] == "FAILED" and report["report_type"] == "SECURITY"
    assert len(bitbucket.annotations[(repo, head_sha, "forge-app")]) == 3

    # Inline comments only for the introduced findings on added lines, as many as the request budget
    # of 3 new findings allows (7 requests: one comment), the blocking one first; a fenced diff for
    # the autofix. The other is in the summary (and, like all of them, a Code Insights annotation).
    comments = bitbucket.pr_comments(repo, BB_PR)
    inline = [c for c in comments if c.get("inline") and not c.get("parent")]
    eval_line = BB_HEAD["app/views.py"].splitlines().index("    value = eval(expr)") + 1
    assert sorted((c["inline"]["path"], c["inline"]["to"]) for c in inline) == [
        ("app/views.py", eval_line)], [c["content"]["raw"] for c in comments]
    raw = inline[0]["content"]["raw"]
    assert "```diff" in raw and "-    value = eval(expr)\n+    value = ast.literal_eval(expr)" in raw, raw
    assert EVAL in raw
    summaries = [c for c in comments if "forge-app:summary" in c["content"]["raw"]]
    assert len(summaries) == 1 and OPEN in summaries[0]["content"]["raw"]
    assert PICKLE in summaries[0]["content"]["raw"] and "request budget" in summaries[0]["content"]["raw"]
    every = "\n".join(c["content"]["raw"] for c in comments)
    assert MD5 not in every  # on the base branch already

    # Redelivery and re-upload change nothing.
    before = json.dumps(comments, sort_keys=True)
    again = httpx.post(f"{server.url}/webhooks/bitbucket", content=body, headers=headers, timeout=10)
    assert again.status_code == 202 and again.json()["status"] == "duplicate", again.text
    mark = len(bitbucket.seen)
    code, rescan, _ = server.upload(head_root, upload_token, bitbucket_ci(repo, head_sha, pr=True))
    assert code == 1 and rescan["counts"] == scan["counts"]
    server.settle(lambda: len(bitbucket.seen))
    assert [(s.method, s.path) for s in bitbucket.seen[mark:] if s.method != "GET"] == []
    assert json.dumps(bitbucket.pr_comments(repo, BB_PR), sort_keys=True) == before
    assert bitbucket.statuses[(repo, head_sha)]["forge-app"]["state"] == "FAILED"

    assert bitbucket.problems == [], bitbucket.problems
    # Outside the description, only the documented exceptions (docs/bitbucket.md, "API routes"): a workspace
    # connection's check, and (the webhook's job ran before CI uploaded the PR scan, and the PR answer has
    # 12-character hashes too) one last-resort lookup of the head's short hash, never repeated.
    new_outside = bitbucket.outside_description[len(outside_before):]
    assert new_outside == ([f"GET /repositories/{repo.split('/')[0]}"] if scope == "workspace" else []) + [
        f"GET /repositories/{repo}/commit/{head_sha[:12]}"], new_outside
    assert server.failed_jobs() == 0, server.log_tail()

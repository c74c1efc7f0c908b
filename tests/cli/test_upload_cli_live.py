"""`forge-app upload` against a live server on loopback, with each CI's real variables,
exactly as the README's CI snippets run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forge_app.web.app import create_app
from tests.support.live_server import serve

HEAD = "c" * 40
SOURCE = "import os\n\n\ndef handler(x):\n    return eval(x)\n"


def semgrep_report(path: str = "app/views.py", line: int = 5, rule: str = "python.lang.security.eval") -> dict:
    return {"version": "1.0.0", "errors": [], "paths": {"scanned": [path]}, "results": [{
        "check_id": rule, "path": path, "start": {"line": line, "col": 12, "offset": 0},
        "end": {"line": line, "col": 19, "offset": 0},
        "extra": {"message": "eval is dangerous", "severity": "ERROR", "lines": "    return eval(x)",
                  "metadata": {"cwe": ["CWE-95"]}, "fingerprint": "requires login"}}]}


@pytest.fixture
def server(settings, storage):
    with serve(create_app(settings, storage, run_worker=False)) as url:
        yield url


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "app").mkdir(parents=True)
    (root / "app" / "views.py").write_text(SOURCE)
    (root / "semgrep.json").write_text(json.dumps(semgrep_report()))
    return root


def run_upload(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "BITBUCKET_"))}
    return subprocess.run([sys.executable, "-m", "forge_app.cli.main", "upload", *args], env={**base, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def github_env(tmp_path: Path, pr: int | None) -> dict[str, str]:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/demo", "GITHUB_SHA": "d" * 40,
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42", "GITHUB_REF_NAME": "main"}
    if pr:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": pr, "head": {"sha": HEAD}, "title": "t",
                                                      "user": {"login": "dev"}}}))
        env.update(GITHUB_EVENT_PATH=str(event), GITHUB_REF=f"refs/pull/{pr}/merge", GITHUB_HEAD_REF="feature",
                   GITHUB_BASE_REF="main", GITHUB_REF_NAME=f"{pr}/merge")
    return env


def test_github_actions_pull_request(server, settings, storage, checkout, tmp_path):
    token = storage.create_upload_token("github", "octo/demo")
    env = {**github_env(tmp_path, pr=9), "FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    done = run_upload(["semgrep.json"], env, checkout)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    scan = storage.scan(int(url.rsplit("/", 1)[1]))
    assert url == f"{settings.public_url}/api/v1/scans/{scan.id}"  # the server's answer: its public URL wins
    assert (scan.repository, scan.commit, scan.pull_request, scan.branch, scan.base_branch) == (
        "octo/demo", HEAD, 9, "feature", "main")  # the PR head, not GITHUB_SHA's merge commit
    assert scan.meta["ci_job_url"] == "https://github.com/octo/demo/actions/runs/42"
    assert "1 new" in done.stdout


def test_gitlab_ci_merge_request_with_a_blocking_finding_exits_1(server, storage, checkout, admin_headers):
    import httpx

    httpx.put(f"{server}/api/v1/policies", json={"default": "block", "rules": {}}, headers=admin_headers)
    token = storage.create_upload_token("gitlab", "group/sub/project")
    env = {"GITLAB_CI": "true", "CI_PROJECT_PATH": "group/sub/project", "CI_COMMIT_SHA": HEAD,
           "CI_MERGE_REQUEST_IID": "12", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
           "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "develop", "CI_JOB_URL": "https://gitlab.example/j/1"}
    done = run_upload(["semgrep.json", "--server", server, "--token", token], env, checkout)
    assert done.returncode == 1, done.stderr
    assert "BLOCK" in done.stdout and "python.lang.security.eval" in done.stdout
    scan = storage.scan(int(done.stdout.strip().splitlines()[-1].rsplit("/", 1)[1]))
    assert (scan.pull_request, scan.base_branch) == (12, "develop")


def test_bitbucket_pipelines_branch_scan(server, storage, checkout):
    token = storage.create_upload_token("bitbucket", "work/repo")
    env = {"BITBUCKET_REPO_FULL_NAME": "work/repo", "BITBUCKET_COMMIT": HEAD, "BITBUCKET_BRANCH": "main",
           "BITBUCKET_BUILD_NUMBER": "7", "BITBUCKET_GIT_HTTP_ORIGIN": "https://bitbucket.org/work/repo"}
    done = run_upload(["semgrep.json", "--server", server, "--token", token], env, checkout)
    assert done.returncode == 0, done.stderr
    scan = storage.scan(int(done.stdout.strip().splitlines()[-1].rsplit("/", 1)[1]))
    assert scan.is_baseline and scan.branch == "main" and scan.pull_request is None


def test_fingerprints_come_from_the_checkout(server, storage, checkout):
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    done = run_upload(["semgrep.json", "--commit", HEAD, "--repo", "octo/demo", "--branch", "main"], env, checkout)
    assert done.returncode == 0, done.stderr
    scan_id = int(done.stdout.strip().splitlines()[-1].rsplit("/", 1)[1])
    fp = storage.scan_findings(scan_id)[0].finding.fingerprint
    assert fp is not None and fp.before, "context lines were read from the checkout"


@pytest.mark.parametrize("args, expected", [
    (["missing.json"], "cannot read missing.json"),
    (["semgrep.json", "--commit", "abc"], "40-character"),
    (["semgrep.json", "--pr", "x"], "--pr"),
    (["semgrep.json", "--token", "fa_upload_unknown"], "401"),
])
def test_usage_and_server_errors_exit_2_with_a_message(server, storage, checkout, args, expected):
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    base = ["--commit", HEAD, "--repo", "octo/demo"] if "--commit" not in args else ["--repo", "octo/demo"]
    done = run_upload(args + base, env, checkout)
    assert done.returncode == 2
    assert expected in done.stderr and done.stderr.startswith("forge-app upload: error:")
    assert "fa_upload_unknown" not in done.stderr


def test_unreachable_server_exits_2(checkout):
    done = run_upload(["semgrep.json", "--server", "http://127.0.0.1:9", "--token", "t", "--commit", HEAD],
                      {}, checkout)
    assert done.returncode == 2 and "cannot reach" in done.stderr


def test_invalid_report_exits_2(server, storage, checkout):
    (checkout / "bad.json").write_text('{"hello": "world"}')
    token = storage.create_upload_token("github", "octo/demo")
    done = run_upload(["bad.json", "--server", server, "--token", token, "--commit", HEAD], {}, checkout)
    assert done.returncode == 2 and "bad.json" in done.stderr


def test_renames_come_from_the_checkouts_git_history(server, storage, tmp_path):
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "views.py").write_text(SOURCE)
    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "base")
    base = git("rev-parse", "HEAD")
    token = storage.create_upload_token("github", "octo/demo")
    (repo / "semgrep.json").write_text(json.dumps(semgrep_report()))
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    done = run_upload(["semgrep.json", "--commit", base, "--repo", "octo/demo", "--branch", "main"], env, repo)
    assert done.returncode == 0, done.stderr
    git("mv", "app/views.py", "app/handlers.py")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "rename")
    head = git("rev-parse", "HEAD")
    (repo / "semgrep.json").write_text(json.dumps(semgrep_report(path="app/handlers.py")))
    done = run_upload(["semgrep.json", "--commit", head, "--repo", "octo/demo", "--branch", "feature",
                       "--base-branch", "main", "--base-commit", base, "--pr", "3"], env, repo)
    assert done.returncode == 0, done.stderr
    assert "0 new, 0 fixed, 1 unchanged" in done.stdout

"""`forge-app upload` with the checkout and --base-commit: the diff decides identity on the server."""

from __future__ import annotations

import json

import pytest

from forge_app.web.app import create_app
from tests.cli.test_diff_git import COPY, PATTERN, RULE, TEST
from tests.cli.test_upload_cli_live import run_upload
from tests.support.gitrepo import Repo, scan
from tests.support.live_server import serve


@pytest.fixture
def server(settings, storage):
    with serve(create_app(settings, storage, run_worker=False)) as url:
        yield url


def test_a_copy_below_the_untouched_original_is_new_through_upload(server, storage, tmp_path):
    repo = Repo(tmp_path / "r")
    base = repo.commit({"tests/test_requests.py": TEST, ".gitignore": "report.json\n"}, "base")
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    (repo.root / "report.json").write_text(json.dumps(scan(repo.files(), PATTERN, RULE)))
    done = run_upload(["report.json", "--commit", base, "--repo", "octo/demo", "--branch", "main"], env, repo.root)
    assert done.returncode == 0, done.stderr

    first, second = TEST.split("\n\n\ndef test_other")
    head = repo.commit({"tests/test_requests.py": first + COPY.format(n=1) + COPY.format(n=2)
                        + "\n\ndef test_other" + second}, "two new tests")
    (repo.root / "report.json").write_text(json.dumps(scan(repo.files(), PATTERN, RULE)))
    args = ["report.json", "--commit", head, "--repo", "octo/demo", "--branch", "feature", "--base-branch", "main",
            "--pr", "3"]
    done = run_upload([*args, "--base-commit", base], env, repo.root)
    assert done.returncode == 0, done.stderr
    assert "2 new, 0 fixed, 1 unchanged" in done.stdout
    scan_id = int(done.stdout.strip().rsplit("/", 1)[1])
    rows = storage.scan_findings(scan_id)
    assert sorted((r.status, r.finding.start_line, r.base_line) for r in rows) == [
        ("new", 9, None), ("new", 15, None), ("unchanged", 4, 4)]

    # Without the base commit there is no diff: the context alone takes the last copy for the original.
    done = run_upload(args, env, repo.root)
    scan_id = int(done.stdout.strip().rsplit("/", 1)[1])
    assert [r.finding.start_line for r in storage.scan_findings(scan_id, ["unchanged"])] == [15]

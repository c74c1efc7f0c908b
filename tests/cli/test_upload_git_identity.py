"""`forge-app upload` with the checkout and --base-commit: the diff decides identity on the server."""

from __future__ import annotations

import json
from pathlib import Path

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


def _ruff_sarif(root: Path, files: dict[str, str]) -> dict:
    """What ruff 0.17.6 writes: S101 on the `assert` keyword alone, absolute `file://` URIs, and once a
    fix whose description text is null (issue #13, cases 2 and 3)."""
    results = []
    for path, text in sorted(files.items()):
        for n, line in enumerate(text.split("\n"), 1):
            col = line.find("assert")
            if col < 0:
                continue
            region = {"startLine": n, "startColumn": col + 1, "endLine": n, "endColumn": col + 7}
            uri = (root / path).resolve().as_uri()
            change = {"artifactLocation": {"uri": uri}, "replacements": [{"deletedRegion": region}]}
            results.append({
                "ruleId": "S101", "level": "error", "message": {"text": "Use of `assert` detected"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}],
                "fixes": [{"description": {"text": None}, "artifactChanges": [change]}] if n == 2 else [],
            })
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "ruff", "version": "0.17.6", "rules": [{"id": "S101"}]}},
                      "results": results}]}


def test_keyword_regions_absolute_uris_and_a_null_description_through_upload(server, storage, tmp_path):
    repo = Repo(tmp_path / "r")
    base_src = "def t():\n    assert a == 1\n    x = 1\n    assert b == 2\n"
    base = repo.commit({"t.py": base_src, ".gitignore": "ruff.sarif\n"}, "base")
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    (repo.root / "ruff.sarif").write_text(json.dumps(_ruff_sarif(repo.root, repo.files())))
    done = run_upload(["ruff.sarif", "--commit", base, "--repo", "octo/demo", "--branch", "main"], env, repo.root)
    assert done.returncode == 0, done.stderr
    assert "2 new, 0 fixed, 0 unchanged" in done.stdout

    head = repo.commit({"t.py": "def t():\n    assert a == 3\n    x = 1\n"}, "change one assert, delete one")
    (repo.root / "ruff.sarif").write_text(json.dumps(_ruff_sarif(repo.root, repo.files())))
    for extra in (["--base-commit", base], []):  # with the diff, and with the fingerprints alone
        done = run_upload(["ruff.sarif", "--commit", head, "--repo", "octo/demo", "--branch", "feature",
                           "--base-branch", "main", "--pr", "4", *extra], env, repo.root)
        assert done.returncode == 0, done.stderr
        # The changed assert is new and both old ones are fixed: widened to their lines, the keyword
        # regions no longer match each other by count alone.
        assert "1 new, 2 fixed, 0 unchanged" in done.stdout, (extra, done.stdout)
        scan_id = int(done.stdout.strip().rsplit("/", 1)[1])
        rows = storage.scan_findings(scan_id)
        assert sorted((r.status, r.finding.path, r.finding.start_line) for r in rows) == [
            ("fixed", "t.py", 2), ("fixed", "t.py", 4), ("new", "t.py", 2)]
        errors = storage.scan(scan_id).errors
        assert any("description" in e and "ignored" in e for e in errors), errors


def test_two_scanners_on_one_branch_through_upload(server, storage, tmp_path):
    """A bandit SARIF upload, then a semgrep upload, to one branch (issue #13, case 4): the second is
    compared with semgrep's own history, not with bandit's, so nothing of bandit's is fixed; a PR
    uploading both reports at once is compared with each tool's baseline and counted per tool."""
    repo = Repo(tmp_path / "r")
    src = "def t():\n    assert a == 1\n    assert b == 2\n"
    base = repo.commit({"t.py": src, ".gitignore": "*.sarif\n*.json\n"}, "base")
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    bandit = _ruff_sarif(repo.root, repo.files())
    bandit["runs"][0]["tool"]["driver"].update(name="Bandit", version="1.9.4")
    (repo.root / "bandit.sarif").write_text(json.dumps(bandit))
    (repo.root / "semgrep.json").write_text(json.dumps(scan(repo.files(), r"assert b", "python.assert-b")))
    branch = ["--commit", base, "--repo", "octo/demo", "--branch", "main"]
    done = run_upload(["bandit.sarif", *branch], env, repo.root)
    assert done.returncode == 0 and "2 new, 0 fixed, 0 unchanged" in done.stdout, done.stdout + done.stderr
    done = run_upload(["semgrep.json", *branch], env, repo.root)
    assert done.returncode == 0 and "1 new, 0 fixed, 0 unchanged" in done.stdout, done.stdout + done.stderr

    done = run_upload(["bandit.sarif", "semgrep.json", "--commit", base, "--repo", "octo/demo", "--branch",
                       "feature", "--base-branch", "main", "--pr", "5", "--base-commit", base], env, repo.root)
    assert done.returncode == 0 and "0 new, 0 fixed, 3 unchanged" in done.stdout, done.stdout + done.stderr
    assert "per tool: Bandit 0 new, 0 fixed, 2 unchanged; semgrep 0 new, 0 fixed, 1 unchanged" in done.stdout, \
        done.stdout

"""`forge-app token create` writes to the database `serve` uses and prints the token last."""

from __future__ import annotations

import os
import subprocess
import sys

from storage import open_storage


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path):
    db = tmp_path / "x.db"
    env = {**os.environ, "FORGE_APP_DATABASE": str(db)}
    done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "octo/demo",
                           "--forge", "gitlab"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fa_upload_")
    repo = open_storage(str(db)).repository_for_token(lines[0])
    assert repo is not None and (repo.forge, repo.full_name) == ("gitlab", "octo/demo")


def test_token_create_rejects_a_malformed_repository(tmp_path):
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp_path / "x.db")}
    done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "nope"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "owner/name" in done.stderr

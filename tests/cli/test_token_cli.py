"""`forge-app token create` writes to the database `serve` uses and prints the token last."""

from __future__ import annotations

import os
import subprocess
import sys

from storage import open_storage


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path):
    db = tmp_path / "x.db"
    open_storage(str(db)).close()  # the server's database, as `forge-app serve` creates it
    env = {**os.environ, "FORGE_APP_DATABASE": str(db)}
    done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "octo/demo",
                           "--forge", "gitlab"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fa_upload_")
    assert f"using database {db}" in done.stderr
    repo = open_storage(str(db)).repository_for_token(lines[0])
    assert repo is not None and (repo.forge, repo.full_name) == ("gitlab", "octo/demo")


def test_token_create_rejects_a_malformed_repository(tmp_path):
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp_path / "x.db")}
    done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "nope"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "owner/name" in done.stderr


def _token(cwd, env, *extra):
    return subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "octo/demo",
                           *extra], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_token_create_refuses_to_create_a_database_unless_init(tmp_path):
    """Run from another directory, it must not mint a token into a fresh ./data the server never reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_APP_")}
    done = _token(tmp_path, env)
    assert done.returncode == 2 and done.stdout == ""
    assert f"no database at {tmp_path / 'data' / 'forge-app.db'}" in done.stderr and "--init" in done.stderr
    assert not (tmp_path / "data").exists()
    done = _token(tmp_path, env, "--init")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "forge-app.db").exists() and "(new)" in done.stderr


def test_help_texts_describe_the_verbs():
    def helps(*args):
        return subprocess.run([sys.executable, "-m", "forge_app.cli.main", *args, "--help"], capture_output=True,
                              text=True, timeout=60).stdout

    token = " ".join(helps("token", "create").split())
    assert "Mint an upload token" in token and "(default: github)" in token and "--init" in token
    assert "Register forge-app as a GitHub App" in " ".join(helps("github", "setup").split())

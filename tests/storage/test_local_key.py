"""Without FORGE_APP_SECRET_KEY every process on one database shares one generated key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from forge_app.config import Settings
from forge_app.security.local_key import ensure_secret_key


def test_generated_key_is_private_stable_and_shared(tmp_path: Path):
    settings = Settings(database=str(tmp_path / "data" / "f.db"))
    first = ensure_secret_key(settings)
    second = ensure_secret_key(Settings(database=str(tmp_path / "data" / "f.db")))
    key_file = tmp_path / "data" / "secret.key"
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_configured_key_wins(tmp_path: Path):
    settings = Settings(database=str(tmp_path / "f.db"), secret_key="x" * 40)
    assert ensure_secret_key(settings).secret_key == "x" * 40
    assert not (tmp_path / "secret.key").exists()


def test_a_database_server_needs_the_key_set(tmp_path: Path):
    """Replicas on several hosts share no directory: a generated key would differ per host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_APP_")}
    env["FORGE_APP_DATABASE"] = "postgresql://forge@127.0.0.1:1/none"
    done = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "worker", "--once"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "FORGE_APP_SECRET_KEY must be set" in done.stderr and "secret.key" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no key file written anywhere

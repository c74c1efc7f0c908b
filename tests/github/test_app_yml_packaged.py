"""app.yml ships inside the package: a built wheel carries it, byte for byte, where the code reads it.

pip builds the wheel as `pip install .` does (an isolated build environment with the setuptools
pyproject.toml asks for), from a copy of the sources, so the checkout is left untouched."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_built_wheel_carries_app_yml(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("forge_app", "storage"):
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("forge_app-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packaged = z.read("forge_app/forges/github/app.yml")
        names = set(z.namelist())
    assert packaged == (ROOT / "app.yml").read_bytes()
    assert "forge_app/forges/github/templates/connections_panel.html" in names  # the forge's console panel

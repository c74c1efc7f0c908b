"""`forge-app diff`: two reports (and optionally their checkouts) in, JSON classification out."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forge_app.cli import diff as diff_cli

RULE = "python.lang.security.audit.eval-detected"
EVAL = re.compile(r"eval\([^)]*\)")
REPO = Path(__file__).resolve().parents[2]

APP = """\
import os


def load(request):
    raw = request.body
    obj = eval(raw)
    return obj


def save(request):
    path = request.path
    obj = eval(raw)
    store(path, obj)
"""


def semgrep_json(files: dict[str, str], *, with_lines: bool = True) -> dict:
    """What `semgrep --json` would say about `files` for a rule flagging eval(...)."""
    results = []
    for path, text in files.items():
        for n, line in enumerate(text.split("\n"), 1):
            for m in EVAL.finditer(line):
                results.append({
                    "check_id": RULE,
                    "path": path,
                    "start": {"line": n, "col": m.start() + 1, "offset": 0},
                    "end": {"line": n, "col": m.end() + 1, "offset": 0},
                    "extra": {"message": "eval is dangerous", "severity": "ERROR", "metadata": {},
                              "lines": line if with_lines else "requires login", "fingerprint": "requires login"},
                })
    return {"results": results, "errors": [], "version": "1.50.0"}


def checkout(tmp: Path, name: str, files: dict[str, str], *, with_lines: bool = True) -> tuple[Path, Path]:
    root = tmp / name
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    report = tmp / f"{name}.json"
    report.write_text(json.dumps(semgrep_json(files, with_lines=with_lines)))
    return report, root


def invoke(capsys, *argv: str) -> tuple[int, dict | None, str]:
    parser = argparse.ArgumentParser(prog="forge-app diff")
    diff_cli.add_arguments(parser)
    code = diff_cli.run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def summary(doc: dict) -> tuple[list, list, list]:
    return (
        [(i["path"], i["line"]) for i in doc["new"]],
        [(i["path"], i["line"]) for i in doc["fixed"]],
        [(i["path"], i["line"], i["base_line"]) for i in doc["unchanged"]],
    )


def test_moved_code_is_unchanged_and_a_copy_is_new(tmp_path: Path, capsys) -> None:
    base, base_root = checkout(tmp_path, "base", {"app.py": APP})
    head_text = "# a header\n\n" + APP.replace("    store(path, obj)", "    store(path, obj)\n    again = eval(raw)")
    head, head_root = checkout(tmp_path, "head", {"app.py": head_text})
    code, doc, err = invoke(capsys, "--base", str(base), "--head", str(head),
                            "--base-root", str(base_root), "--head-root", str(head_root))
    assert code == 0, err
    assert summary(doc) == ([("app.py", 16)], [], [("app.py", 8, 6), ("app.py", 14, 12)])
    item = doc["unchanged"][0]
    fields = {"check_id", "path", "line", "end_line", "fingerprint", "message", "severity"}
    assert set(item) == fields | {"base_line", "base_path"}
    assert item["check_id"] == RULE and item["severity"] == "error" and item["base_path"] == "app.py"
    assert re.fullmatch(r"[0-9a-f]{32}", item["fingerprint"])
    assert set(doc["new"][0]) == fields


def test_without_roots_the_snippets_are_enough(tmp_path: Path, capsys) -> None:
    parts = APP.split("\n\n\n")
    swapped = parts[0] + "\n\n\n" + parts[2] + "\n\n" + parts[1] + "\n"
    base, _ = checkout(tmp_path, "base", {"app.py": APP})
    head, _ = checkout(tmp_path, "head", {"app.py": swapped.replace("eval(raw)\n    return", "eval(raw2)\n    return")})
    code, doc, err = invoke(capsys, "--base", str(base), "--head", str(head))
    assert code == 0, err
    new, fixed, unchanged = summary(doc)
    assert len(new) == 1 and len(fixed) == 1 and len(unchanged) == 1
    assert new == [("app.py", 12)]  # eval(raw2)
    # Without context, which of two identical base findings was changed is a guess
    # by line (docs/fingerprints.md): the counts are what must be right.


def test_a_missing_source_file_falls_back_to_the_snippet(tmp_path: Path, capsys) -> None:
    base, base_root = checkout(tmp_path, "base", {"app.py": APP})
    head, head_root = checkout(tmp_path, "head", {"app.py": APP})
    (head_root / "app.py").unlink()
    code, doc, err = invoke(capsys, "--base", str(base), "--head", str(head),
                            "--base-root", str(base_root), "--head-root", str(head_root))
    assert code == 0, err
    assert not doc["new"] and not doc["fixed"] and len(doc["unchanged"]) == 2


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_files_outside_the_root_are_not_read(tmp_path: Path, capsys) -> None:
    outside = tmp_path / "secret.py"
    outside.write_text("x = eval(a)\n" * 3)
    base, base_root = checkout(tmp_path, "base", {"app.py": APP})
    head, head_root = checkout(tmp_path, "head", {"app.py": APP})
    (head_root / "app.py").unlink()
    (head_root / "app.py").symlink_to(outside)  # the report's lines 6 and 12 are not in it
    code, doc, err = invoke(capsys, "--base", str(base), "--head", str(head),
                            "--base-root", str(base_root), "--head-root", str(head_root))
    assert code == 0, err
    assert "warning" in err and "outside" in err
    assert len(doc["unchanged"]) == 2


def test_source_reader_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ok.py").write_text("fine\n")
    (tmp_path / "other.py").write_text("secret\n")
    warnings: list[str] = []
    read = diff_cli.source_reader(str(tmp_path / "root"), warnings.append)
    assert read("ok.py") == "fine\n"
    assert read("../other.py") is None
    assert read(str(tmp_path / "other.py")) is None
    assert read("missing.py") is None
    assert read(".") is None  # a directory
    assert len(warnings) == 2


def test_a_line_beyond_the_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    base, _ = checkout(tmp_path, "base", {"app.py": APP})
    head, head_root = checkout(tmp_path, "head", {"app.py": APP})
    (head_root / "app.py").write_text("short = 1\n")
    code, doc, err = invoke(capsys, "--base", str(base), "--head", str(head), "--head-root", str(head_root))
    assert code == 2 and doc is None
    assert err.startswith("forge-app diff: error: ") and err.count("\n") == 1
    assert "app.py" in err and "line 6" in err


@pytest.mark.parametrize("content", [b"{not json", b'{"something": "else"}', b"\xff\xfe{}"])
def test_bad_reports_exit_2_with_one_line(tmp_path: Path, capsys, content: bytes) -> None:
    good, _ = checkout(tmp_path, "base", {"app.py": APP})
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, doc, err = invoke(capsys, "--base", str(good), "--head", str(bad))
    assert code == 2 and doc is None
    assert err.startswith("forge-app diff: error: ") and err.count("\n") == 1 and "bad.json" in err


def test_missing_report_and_bad_root_exit_2(tmp_path: Path, capsys) -> None:
    good, _ = checkout(tmp_path, "base", {"app.py": APP})
    code, _, err = invoke(capsys, "--base", str(good), "--head", str(tmp_path / "nope.json"))
    assert code == 2 and err.startswith("forge-app diff: error: cannot read") and "nope.json" in err
    code, _, err = invoke(capsys, "--base", str(good), "--head", str(good), "--head-root", str(tmp_path / "nodir"))
    assert code == 2 and "not a directory" in err


def test_subprocess_form(tmp_path: Path) -> None:
    base, base_root = checkout(tmp_path, "base", {"app.py": APP, "pkg/util.py": "def f():\n    eval(x)\n"})
    head, head_root = checkout(tmp_path, "head", {"app.py": "\n" + APP})
    cmd = [sys.executable, "-m", "forge_app.cli.diff", "--base", str(base), "--head", str(head),
           "--base-root", str(base_root), "--head-root", str(head_root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert summary(doc) == ([], [("pkg/util.py", 2)], [("app.py", 7, 6), ("app.py", 13, 12)])
    bad = subprocess.run([*cmd[:3], "--base", str(base)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "--head" in bad.stderr

"""`forge-app diff --git`: identity from the diff between two commits of a real repository."""

from __future__ import annotations

import json
from pathlib import Path

from forge_app.cli import diff as diff_cli
from tests.support.gitrepo import Repo, scan

# The requests case (issue #13): an assert in an untouched test, and two new tests inserted
# right below it that repeat the line.
TEST = '''\
def test_content_length(self):
    p = prepare(body)
    length = str(len(body))
    assert p.headers["Content-Length"] == length


def test_other(self):
    assert ok()
'''
COPY = '''

def test_content_length_{n}(self):
    p = prepare(body)
    length = str(len(body))
    assert p.headers["Content-Length"] == length
'''
PATTERN, RULE = r'assert p\.headers\["Content-Length"\] == length', "content-length"


def run_diff(capsys, tmp: Path, base: dict, head: dict, *extra: str) -> dict:
    (tmp / "base.json").write_text(json.dumps(base))
    (tmp / "head.json").write_text(json.dumps(head))
    capsys.readouterr()
    code = diff_cli.main(["--base", str(tmp / "base.json"), "--head", str(tmp / "head.json"), *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_a_copy_inserted_below_the_untouched_original_is_the_new_one(tmp_path, capsys):
    repo = Repo(tmp_path / "r")
    repo.commit({"tests/test_requests.py": TEST}, "base")
    base_files = repo.files()
    first, second = TEST.split("\n\n\ndef test_other")
    head_text = first + COPY.format(n=1) + COPY.format(n=2) + "\n\ndef test_other" + second
    repo.commit({"tests/test_requests.py": head_text}, "two new tests")
    head_files = repo.files()
    base, head = scan(base_files, PATTERN, RULE), scan(head_files, PATTERN, RULE)

    out = run_diff(capsys, tmp_path, base, head, "--git", str(repo.root))
    assert [(f["line"], f["base_line"]) for f in out["unchanged"]] == [(4, 4)]
    assert [f["line"] for f in out["new"]] == [9, 15] and out["fixed"] == []

    # Without the diff, context alone gets it wrong: the last copy takes the original's next lines.
    roots = []
    for name, files in (("base", base_files), ("head", head_files)):
        for path, text in files.items():
            (tmp_path / name / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / path).write_text(text)
        roots += [f"--{name}-root", str(tmp_path / name)]
    out = run_diff(capsys, tmp_path, base, head, *roots)
    assert [(f["line"], f["base_line"]) for f in out["unchanged"]] == [(15, 4)]
    # The diff wins over the checkouts' context.
    out = run_diff(capsys, tmp_path, base, head, *roots, "--git", str(repo.root))
    assert [(f["line"], f["base_line"]) for f in out["unchanged"]] == [(4, 4)]


def test_a_renamed_file_through_git_and_through_a_renames_file(tmp_path, capsys):
    repo = Repo(tmp_path / "r")
    src = "import os\n\n\ndef run(cmd):\n    os.system(cmd)\n"
    repo.commit({"flask/scaffold.py": src}, "base")
    base = scan(repo.files(), r"os\.system\(cmd\)", "os-system")
    repo.move("flask/scaffold.py", "flask/sansio/scaffold.py")
    repo.commit({"flask/sansio/scaffold.py": src.replace("import os", "import os\nimport sys")}, "move")
    head = scan(repo.files(), r"os\.system\(cmd\)", "os-system")

    out = run_diff(capsys, tmp_path, base, head, "--git", str(repo.root))
    assert out["new"] == [] and out["fixed"] == []
    assert [(f["path"], f["line"], f["base_path"], f["base_line"]) for f in out["unchanged"]] == [
        ("flask/sansio/scaffold.py", 6, "flask/scaffold.py", 5)]

    out = run_diff(capsys, tmp_path, base, head)
    assert len(out["new"]) == 1 and len(out["fixed"]) == 1  # no renames: the move looks like new + fixed

    (tmp_path / "renames.json").write_text(json.dumps({"flask/scaffold.py": "flask/sansio/scaffold.py"}))
    out = run_diff(capsys, tmp_path, base, head, "--renames", str(tmp_path / "renames.json"))
    assert out["new"] == [] and out["fixed"] == [] and len(out["unchanged"]) == 1

    (tmp_path / "renames.txt").write_text("R087\tflask/scaffold.py\tflask/sansio/scaffold.py\n")
    out = run_diff(capsys, tmp_path, base, head, "--renames", str(tmp_path / "renames.txt"))
    assert out["new"] == [] and out["fixed"] == []


def test_bad_git_arguments_exit_2(tmp_path, capsys):
    repo = Repo(tmp_path / "r")
    repo.commit({"a.py": "x = 1\n"}, "only")
    (tmp_path / "r.json").write_text(json.dumps({"results": [], "errors": []}))
    for extra, says in ((["--git", str(tmp_path / "nope")], "not a directory"),
                        (["--git", str(repo.root), "--base-ref", "HEAD~5"], "is not a commit"),
                        (["--git", str(repo.root), "--base-ref=--output=x"], "is not a commit"),
                        (["--renames", str(tmp_path / "missing.txt")], "cannot read"),
                        (["--renames", str(tmp_path / "r.json")], "renames must map")):
        capsys.readouterr()
        code = diff_cli.main(["--base", str(tmp_path / "r.json"), "--head", str(tmp_path / "r.json"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and says in err, (extra, err)


def test_keyword_regions_and_absolute_paths_through_diff_git(tmp_path, capsys):
    """ruff-style S101 on `assert` alone, written with absolute paths: a changed assert is new, the
    deleted and the old one fixed (no longer matched by the keyword alone)."""
    repo = Repo(tmp_path / "r")
    base_src = "def t():\n    assert a == 1\n    x = 1\n    assert b == 2\n"
    repo.commit({"t.py": base_src}, "base")
    base = scan(repo.files(), r"assert", "S101")
    repo.commit({"t.py": "def t():\n    assert a == 3\n    x = 1\n"}, "change one, delete one")
    head = scan(repo.files(), r"assert", "S101")
    for report in (base, head):
        for r in report["results"]:
            r["path"] = str(repo.root.resolve() / r["path"])
    out = run_diff(capsys, tmp_path, base, head, "--git", str(repo.root))
    assert [(f["path"], f["line"]) for f in out["new"]] == [("t.py", 2)]
    assert sorted(f["line"] for f in out["fixed"]) == [2, 4] and out["unchanged"] == []

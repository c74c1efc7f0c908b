"""The whole story on a fake GitHub: install, open a PR, upload base and PR scans, publish,
publish again (nothing changes), push a fix (the fixed thread is resolved, the re-indented
finding stays silent)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import drain
from tests.github.gh_helpers import (
    INSTALLATION,
    PR,
    REPO,
    deliver,
    github_files,
    installation_event,
    pull_request_event,
    scan_tree,
    sha,
    upload,
    write_tree,
)

BASE = {
    "app/main.py": """import os
import hashlib


def load(path):
    with open(path) as f:
        return f.read()


def legacy(cmd):
    os.system(cmd)


def checksum(data):
    return hashlib.sha256(data).hexdigest()


def helper_a():
    return 1


def helper_b():
    return 2


def helper_c():
    return 3


def helper_d():
    return 4


def old_digest(data):
    return hashlib.md5(data).hexdigest()
""",
    "README.md": "demo\n",
}

NEW_CODE = """

def run(expr):
    return eval(expr)


def query(db, user):
    db.execute("SELECT * FROM t WHERE u = '%s'" % user)


def fetch(url):
    resp = requests.get(
        url)
    return resp


def debug(x):
    print(x)
"""

HEAD1 = {
    "app/main.py": BASE["app/main.py"]
    .replace("import os\n", "import os\nimport requests\n")
    .replace("    return hashlib.sha256(data).hexdigest()\n",
             "    return hashlib.sha256(data).hexdigest()\n" + NEW_CODE),
    "README.md": "demo\n",
}
# Fixes eval (adding an import shifts every line) and re-indents the SQL finding's function body.
HEAD2 = {
    "app/main.py": HEAD1["app/main.py"]
    .replace("import os\n", "import ast\nimport os\n")
    .replace("return eval(expr)", "return ast.literal_eval(expr)")
    .replace("    db.execute(\"SELECT", "        db.execute(\"SELECT"),
    "README.md": "demo\n",
}
BASE_RULES = ["python.lang.security.eval", "python.lang.security.os-system", "python.sqli.string-format",
              "python.requests.no-timeout", "python.debug.print"]
ALL_RULES = BASE_RULES + ["python.weak-hash.md5"]  # enabled on the PR: flags old code outside the diff
POLICY = {"default": "comment", "rules": {"python.lang.security.eval": "block", "python.debug.print": "monitor"}}


def test_review_lifecycle(client, app, storage, fake_github, admin_headers, tmp_path: Path) -> None:
    h1, h2, base_sha = sha("head-1"), sha("head-2"), sha("base")
    fake_github.add_installation(INSTALLATION, "octo", [REPO])
    assert client.put("/api/v1/policies", json=POLICY, headers=admin_headers).status_code == 200

    # The org installs the app, then someone opens a pull request.
    assert deliver(client, "installation", installation_event("created")).status_code == 202
    opened = pull_request_event("opened", h1)
    opened_delivery = "delivery-opened-1"
    assert deliver(client, "pull_request", opened, delivery=opened_delivery).status_code == 202
    drain(app)
    repo = storage.find_repository("github", REPO)
    assert repo is not None and repo.installation_id == INSTALLATION
    assert storage.github_pull_request(repo.id, PR).head_sha == h1
    assert fake_github.requests == []  # nothing to say before the repository uploads scans

    token = storage.create_upload_token("github", REPO)
    base_tree = write_tree(tmp_path / "base", BASE)
    upload(client, token, commit=base_sha, findings=scan_tree(base_tree, BASE_RULES), branch="main")
    fake_github.set_pull(REPO, PR, h1, github_files(BASE, HEAD1))
    head1 = write_tree(tmp_path / "head1", HEAD1)
    scan1 = upload(client, token, commit=h1, findings=scan_tree(head1, ALL_RULES), pr=PR, branch="feature",
                   base_branch="main")
    assert scan1["counts"] == {"new": 5, "fixed": 0, "unchanged": 1}
    assert scan1["blocking"] is True
    mark = fake_github.mark()
    drain(app)
    first_publish = fake_github.since(mark)
    print(f"\nfirst publish: {len(first_publish)} requests: "
          + ", ".join(f"{r['method']} {r['path']}" for r in first_publish))

    # Exactly the new findings on changed lines, in ONE review, suggestions where fixes apply.
    reviews = fake_github.reviews_of(REPO, PR)
    assert len(reviews) == 1 and reviews[0]["commit_id"] == h1
    comments = sorted(fake_github.comments_of(REPO, PR), key=lambda c: c["line"])
    by_rule = {c["body"].split("`")[1]: c for c in comments}
    assert set(by_rule) == {"python.lang.security.eval", "python.sqli.string-format", "python.requests.no-timeout"}
    eval_comment = by_rule["python.lang.security.eval"]
    assert "```suggestion\n    return ast.literal_eval(expr)\n```" in eval_comment["body"]
    assert eval_comment["start_line"] is None
    fetch_comment = by_rule["python.requests.no-timeout"]
    assert fetch_comment["start_line"] == fetch_comment["line"] - 1  # a two-line suggestion
    assert "```suggestion\n    resp = requests.get(\n        url, timeout=10)\n```" in fetch_comment["body"]
    assert "```suggestion" not in by_rule["python.sqli.string-format"]["body"]
    assert "Blocking" in eval_comment["body"]

    # The finding outside the diff goes to the summary and the check, not inline.
    summaries = list(fake_github.issue_comments.values())
    assert len(summaries) == 1 and "python.weak-hash.md5" in summaries[0]["body"]
    runs = fake_github.runs_of(REPO, h1)
    assert len(runs) == 1
    run = runs[0]
    assert run["name"] == "forge-app" and run["status"] == "completed" and run["conclusion"] == "failure"
    assert run["details_url"] == scan1["url"]
    levels = sorted((a["title"], a["annotation_level"]) for a in run["annotations"])
    # The monitor rule (python.debug.print) gets no annotation: annotations show inline on the PR.
    assert levels == [("python.lang.security.eval", "failure"),
                      ("python.requests.no-timeout", "warning"), ("python.sqli.string-format", "warning"),
                      ("python.weak-hash.md5", "warning")]
    assert "python.weak-hash.md5" in run["output"]["summary"]

    # The same webhook and the same scan again change nothing on the pull request.
    counts = (len(fake_github.reviews), len(fake_github.comments), len(fake_github.check_runs),
              len(fake_github.issue_comments), len(run["annotations"]))
    summary_body = summaries[0]["body"]
    assert deliver(client, "pull_request", opened, delivery=opened_delivery).json()["status"] == "duplicate"
    deliver(client, "pull_request", pull_request_event("synchronize", h1))
    upload(client, token, commit=h1, findings=scan_tree(head1, ALL_RULES), pr=PR, branch="feature", base_branch="main")
    mark = fake_github.mark()
    drain(app)
    print("same scan again: " + ", ".join(f"{r['method']} {r['path']}" for r in fake_github.since(mark)))
    assert (len(fake_github.reviews), len(fake_github.comments), len(fake_github.check_runs),
            len(fake_github.issue_comments), len(run["annotations"])) == counts
    assert summaries[0]["body"].split("[Scan details]")[0] == summary_body.split("[Scan details]")[0]
    assert run["conclusion"] == "failure"

    # A new commit fixes eval and re-indents the SQL finding.
    fake_github.set_pull(REPO, PR, h2, github_files(BASE, HEAD2))
    deliver(client, "pull_request", pull_request_event("synchronize", h2))
    drain(app)
    waiting = fake_github.runs_of(REPO, h2)
    assert len(waiting) == 1 and waiting[0]["status"] == "queued"  # waits for the upload
    head2 = write_tree(tmp_path / "head2", HEAD2)
    scan2 = upload(client, token, commit=h2, findings=scan_tree(head2, ALL_RULES), pr=PR, branch="feature",
                   base_branch="main")
    assert scan2["blocking"] is False
    mark = fake_github.mark()
    drain(app)
    print("fix publish: " + ", ".join(f"{r['method']} {r['path']}" for r in fake_github.since(mark)))

    assert len(fake_github.reviews) == counts[0]  # nothing new to say about the re-indented finding
    top_level = fake_github.comments_of(REPO, PR)
    assert len(top_level) == 3
    replies = [c for c in fake_github.comments.values() if c.get("in_reply_to_id")]
    assert [r["in_reply_to_id"] for r in replies] == [eval_comment["id"]]
    assert h2[:12] in replies[0]["body"]
    resolved = [t["comments"][0] for t in fake_github.threads.values() if t["resolved"]]
    assert resolved == [eval_comment["id"]]  # only the fixed finding's thread
    runs2 = fake_github.runs_of(REPO, h2)
    assert len(runs2) == 1 and runs2[0]["conclusion"] == "success"
    assert len(fake_github.issue_comments) == 1  # the summary is edited in place

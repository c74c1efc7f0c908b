"""Publishing PR scans on the fake GitHub: pagination, anchoring, rate limits, token refresh,
crash recovery, request budgets."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding, Fix
from tests.conftest import drain
from tests.github.gh_helpers import (
    INSTALLATION,
    PR,
    REPO,
    deliver,
    open_pull_request,
    pull_request_event,
    push_pull_request,
    sha,
    upload,
    write_tree,
)

EVAL = ["python.lang.security.eval"]


def run_later(app, seconds: float = 3600) -> int:
    """Run the jobs that are due `seconds` from now (a job waiting for a rate limit, a retry)."""
    async def go() -> int:
        ran = 0
        while await app.state.worker.run_once(now=time.time() + seconds):
            ran += 1
        return ran
    return asyncio.run(go())


def evals(n: int) -> str:
    return "".join(f"x{i} = eval(s{i})\n" for i in range(n))


def test_request_budget_for_1_10_60_1000_findings(client, app, storage, fake_github, tmp_path: Path) -> None:
    """At most 6 + ceil(n/50) GitHub requests per PR scan with n new findings (issue #10): inline
    comments go in reviews of 50 (capped by FORGE_APP_MAX_INLINE_COMMENTS), annotations 50 per update."""
    costs = {}
    for n, number in ((1, 11), (10, 12), (60, 13), (1000, 14)):
        head = {f"pkg/mod{number}.py": "import ast\n" + evals(n)}
        open_pull_request(client, storage, fake_github, tmp_path, {}, head, head_sha=sha(f"budget{n}"), rules=EVAL,
                          pr=number, repo=f"octo/budget{n}")
        mark = fake_github.mark()
        drain(app)
        requests = [r for r in fake_github.since(mark) if not r["path"].endswith("/access_tokens")]
        costs[n] = requests
        assert len(requests) <= 6 + math.ceil(n / 50), (n, [f"{r['method']} {r['path']}" for r in requests])
        # FORGE_APP_MAX_INLINE_COMMENTS (50): the rest are listed in the summary note
        assert len(fake_github.comments_of(f"octo/budget{n}", number)) == min(n, 50)
        assert len(fake_github.reviews_of(f"octo/budget{n}", number)) == 1
        if n > 50:
            assert any(f"{n - 50} of these are on changed lines but past this scan's limit of 50" in c["body"]
                       for c in fake_github.issue_comments.values())
        run = fake_github.runs_of(f"octo/budget{n}")[0]
        assert len(run["annotations"]) == n and run["conclusion"] == "success"
    metrics = client.get("/metrics").text
    assert 'forge_app_forge_requests_total{forge="github",status="201"}' in metrics
    assert 'forge_app_scan_forge_requests_count{forge="github"}' in metrics  # the per-scan histogram
    for n, requests in costs.items():
        print(f"\n{n} new finding(s): {len(requests)} GitHub API requests: "
              + ", ".join(f"{r['method']} {r['path'].split('/octo/')[-1]}" for r in requests))
    # 1 or 10 findings: check run created, files, review, its comments, check run completed. 60: and the
    # summary note. 1,000: and 19 more pages of 50 annotations (25, within the budget of 26).
    assert [len(costs[n]) for n in (1, 10, 60, 1000)] == [5, 5, 7, 25]


def test_more_than_30_files_are_paginated(client, app, storage, fake_github, tmp_path: Path) -> None:
    base = {f"src/f{i:03}.py": "a = 1\n" for i in range(130)}
    head = {f"src/f{i:03}.py": "a = 1\nb = 2\n" for i in range(130)}
    head["src/f125.py"] = "a = 1\nb = eval(c)\n"  # on the second page of files
    open_pull_request(client, storage, fake_github, tmp_path, base, head, head_sha=sha("many"), rules=EVAL)
    drain(app)
    pages = [r for r in fake_github.requests if r["path"].endswith("/pulls/7/files")]
    assert [r["query"] for r in pages] == ["per_page=100", "per_page=100&page=2"]
    [comment] = fake_github.comments_of(REPO, PR)
    assert comment["path"] == "src/f125.py" and comment["line"] == 2


def test_finding_outside_the_diff_goes_to_summary_and_check(client, app, storage, fake_github, tmp_path: Path) -> None:
    body = "".join(f"v{i} = {i}\n" for i in range(40)) + "y = eval(z)\n"
    base = {"app.py": body}
    head = {"app.py": "import ast\n" + body}
    open_pull_request(client, storage, fake_github, tmp_path, base, head, head_sha=sha("outside"), rules=EVAL,
                      base_rules=[])
    drain(app)
    assert fake_github.reviews == {} and fake_github.comments == {}
    [summary] = fake_github.issue_comments.values()
    assert "`python.lang.security.eval`" in summary["body"] and "`app.py:42`" in summary["body"]
    [run] = fake_github.runs_of(REPO)
    assert [(a["path"], a["start_line"]) for a in run["annotations"]] == [("app.py", 42)]
    assert "app.py:42" in run["output"]["summary"]


def test_suggestion_spanning_two_hunks_is_a_plain_block(client, app, storage, fake_github, tmp_path: Path) -> None:
    base_text = "".join(f"line{i} = {i}\n" for i in range(1, 31))
    head_text = base_text.replace("line5 = 5\n", "line5 = 55\n").replace("line14 = 14\n", "line14 = 144\n")
    open_pull_request(client, storage, fake_github, tmp_path, {"m.py": base_text}, {"m.py": head_text},
                      head_sha=sha("hunks-base"), rules=[])
    tree = write_tree(tmp_path / "two-hunks", {"m.py": head_text})
    fix = Fix(5, 14, tuple(f"line{i} = 0" for i in range(5, 15)))
    finding = Finding(rule_id="python.custom.block", path="m.py", start_line=5, end_line=14, message="Rewrite this.",
                      fix=fix, tool="semgrep")
    [fingerprinted] = fingerprint_findings([finding], lambda p: (tree / p).read_text())
    token = storage.create_upload_token("github", REPO)
    h = sha("two-hunks")
    fake_github.set_pull(REPO, PR, h, fake_github.pulls[(REPO, PR)].files)
    upload(client, token, commit=h, findings=[fingerprinted.to_dict()], pr=PR, branch="feature", base_branch="main")
    drain(app)
    [comment] = fake_github.comments_of(REPO, PR)
    assert (comment["start_line"], comment["line"]) == (11, 14)  # the part in the last hunk
    assert "```suggestion" not in comment["body"]
    assert "Suggested fix for lines 5–14:\n\n```\nline5 = 0" in comment["body"]


@pytest.mark.parametrize("where, headers", [
    ("POST", {"retry-after": "60"}),
    ("GET", {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "{reset}"}),
])
def test_rate_limited_publish_waits_and_drops_nothing(client, app, storage, fake_github, tmp_path: Path, where: str,
                                                       headers: dict[str, str]) -> None:
    head = {"a.py": "import ast\n" + evals(3)}
    open_pull_request(client, storage, fake_github, tmp_path, {}, head, head_sha=sha("limited"), rules=EVAL)
    path = r"/pulls/7/reviews$" if where == "POST" else r"/pulls/7/files$"
    filled = {k: v.format(reset=int(time.time()) + 90) for k, v in headers.items()}
    fake_github.inject(where, path, 403, filled, message="You have exceeded a secondary rate limit")
    drain(app)
    [job] = storage.jobs(kind="publish_scan")
    assert job["status"] == "queued" and "rate limit" in job["last_error"]
    assert 50 <= job["run_at"] - time.time() <= 95  # GitHub's wait, not the generic backoff
    assert drain(app) == 0  # not due yet
    assert run_later(app, 120) >= 1
    assert storage.jobs(kind="publish_scan")[0]["status"] == "done"
    assert len(fake_github.reviews_of(REPO, PR)) == 1
    assert len(fake_github.comments_of(REPO, PR)) == 3
    assert len(fake_github.runs_of(REPO)) == 1


def test_expired_installation_token_is_refreshed_once(client, app, storage, fake_github, tmp_path: Path) -> None:
    base: dict[str, str] = {}
    head1 = {"a.py": "x = eval(y)\n"}
    token, _ = open_pull_request(client, storage, fake_github, tmp_path, base, head1, head_sha=sha("t1"), rules=EVAL)
    drain(app)
    cached = storage.github_token(INSTALLATION)
    assert cached is not None and not cached[0].startswith("ghs_")  # encrypted at rest
    fake_github.expire_tokens()  # GitHub no longer accepts it, though our cache thinks it valid
    mark = fake_github.mark()
    push_pull_request(client, token, fake_github, tmp_path / "t", base, {"a.py": "x = eval(y)\nz = eval(w)\n"},
                      head_sha=sha("t2"), rules=EVAL)
    drain(app)
    requests = fake_github.since(mark)
    assert [r["status"] for r in requests[:3]] == [401, 201, 201]  # refused, new token, retried call
    assert sum(1 for r in requests if r["path"].endswith("/access_tokens")) == 1
    assert storage.github_token(INSTALLATION)[0] != cached[0]
    assert len(fake_github.comments_of(REPO, PR)) == 2


def test_crash_after_posting_is_recovered_from_markers(client, app, storage, fake_github, tmp_path: Path,
                                                       monkeypatch) -> None:
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(2)}, head_sha=sha("crash"), rules=EVAL)
    real = storage.record_review_comment
    calls = {"n": 0}

    def crash_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "record_review_comment", crash_once)
    drain(app)
    assert storage.jobs(kind="publish_scan")[0]["status"] == "queued"
    run_later(app)
    assert storage.jobs(kind="publish_scan")[0]["status"] == "done"
    assert len(fake_github.reviews_of(REPO, PR)) == 1  # not posted twice
    assert len(storage.review_comments(storage.find_repository("github", REPO).id, PR)) == 2


def test_scan_of_an_old_head_only_sets_its_check(client, app, storage, fake_github, tmp_path: Path) -> None:
    old, new = sha("old-head"), sha("new-head")
    fake_github.add_installation(INSTALLATION, "octo", [REPO])
    deliver(client, "pull_request", pull_request_event("synchronize", new))  # the PR moved on before the upload
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(1)}, head_sha=old, rules=EVAL)
    fake_github.set_pull(REPO, PR, new, fake_github.pulls[(REPO, PR)].files)
    drain(app)
    assert fake_github.reviews == {}
    [run] = fake_github.runs_of(REPO, old)
    assert run["conclusion"] == "success" and len(run["annotations"]) == 1
    [waiting] = fake_github.runs_of(REPO, new)
    assert waiting["status"] == "queued"
    assert fake_github.count("GET", r"/pulls/7$") == 1


def test_closed_pull_request_gets_nothing(client, app, storage, fake_github, tmp_path: Path) -> None:
    head = sha("closed")
    fake_github.add_installation(INSTALLATION, "octo", [REPO])
    deliver(client, "pull_request", pull_request_event("closed", head))
    drain(app)
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(1)}, head_sha=head, rules=EVAL)
    drain(app)
    assert fake_github.requests == []


def test_tokens_never_cross_installations(client, app, storage, fake_github, tmp_path: Path) -> None:
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(1)}, head_sha=sha("i1"), rules=EVAL)
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"b.py": evals(1)}, head_sha=sha("i2"), rules=EVAL,
                      repo="other/lib", installation=2002)
    drain(app)
    assert len(fake_github.tokens) == 2
    assert len(fake_github.comments_of(REPO, PR)) == 1 and len(fake_github.comments_of("other/lib", PR)) == 1
    # (the fake answers 404 and records a violation if a token is used for another installation's repository)


def test_unknown_installation_is_looked_up_and_remembered(client, app, storage, fake_github, tmp_path: Path) -> None:
    fake_github.add_installation(3003, "octo", [REPO])
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(1)}, head_sha=sha("lookup"),
                      rules=EVAL, installation=None)
    drain(app)
    assert fake_github.count("GET", r"/repos/octo/demo/installation$") == 1
    assert storage.find_repository("github", REPO).installation_id == 3003
    assert len(fake_github.comments_of(REPO, PR)) == 1


def test_repository_without_installation_publishes_nothing(client, app, storage, fake_github, tmp_path: Path) -> None:
    open_pull_request(client, storage, fake_github, tmp_path, {}, {"a.py": evals(1)}, head_sha=sha("none"),
                      rules=EVAL, installation=None)
    drain(app)
    assert [r["path"] for r in fake_github.requests] == ["/repos/octo/demo/installation"]
    assert storage.jobs(kind="publish_scan")[0]["status"] == "done"


def test_reverted_fix_reopens_the_thread(client, app, storage, fake_github, tmp_path: Path) -> None:
    """fix → resolved; the fix reverted → reopened with a reply; fixed again → resolved again."""
    bad = {"a.py": "import ast\n" + evals(1)}
    good = {"a.py": "import ast\nx0 = ast.literal_eval(s0)\n"}
    token, _ = open_pull_request(client, storage, fake_github, tmp_path, {}, bad, head_sha=sha("r1"), rules=EVAL)
    drain(app)
    [comment] = fake_github.comments_of(REPO, PR)
    [thread] = [t for t in fake_github.threads.values() if t["comments"][0] == comment["id"]]
    repo_id = storage.find_repository("github", REPO).id
    root = tmp_path / "pushes"

    def push(label: str, files: dict[str, str]) -> str:
        head = sha(label)
        push_pull_request(client, token, fake_github, root, {}, files, head_sha=head, rules=EVAL)
        drain(app)
        return head

    def replies() -> list[str]:
        return [fake_github.comments[c]["body"] for c in thread["comments"][1:]]

    fixed = push("r2", good)
    assert thread["resolved"] and replies() == [f"✅ Fixed in {fixed[:12]}. forge-app no longer finds this; "
                                                "resolving the thread."]
    [row] = storage.review_comments(repo_id, PR)
    assert row.resolved

    reverted = push("r3", bad)
    assert not thread["resolved"]
    assert len(replies()) == 2 and replies()[1].startswith(f"⚠️ Reintroduced in {reverted[:12]}")
    assert fake_github.comments_of(REPO, PR) == [comment]  # a reply on the thread, never a second comment
    [row] = storage.review_comments(repo_id, PR)
    assert not row.resolved

    again = push("r4", good)
    assert thread["resolved"]
    assert len(replies()) == 3 and replies()[2].startswith(f"✅ Fixed in {again[:12]}")
    assert storage.review_comments(repo_id, PR)[0].resolved
    assert storage.jobs(status="failed") == []


def test_a_crash_right_after_posting_the_summary_does_not_post_it_twice(client, app, storage, fake_github,
                                                                       tmp_path: Path, monkeypatch) -> None:
    """The process dies between GitHub's answer to the summary POST and remembering its id."""
    body = "".join(f"v{i} = {i}\n" for i in range(40)) + "y = eval(z)\n"
    remember = storage.remember_forge_object
    crashed = []

    def dies_once_after_posting(repository_id, scope, name, value):
        if name == "summary" and value.get("id") and not crashed:
            crashed.append(value["id"])
            raise RuntimeError("killed")  # what kill -9 leaves: posted on GitHub, not recorded here
        return remember(repository_id, scope, name, value)

    monkeypatch.setattr(storage, "remember_forge_object", dies_once_after_posting)
    open_pull_request(client, storage, fake_github, tmp_path, {"app.py": body}, {"app.py": "import ast\n" + body},
                      head_sha=sha("crash-summary"), rules=EVAL, base_rules=[])
    drain(app)
    assert crashed and len(fake_github.issue_comments) == 1
    run_later(app)  # the retried job
    [summary] = fake_github.issue_comments.values()
    assert str(summary["id"]) == crashed[0] and "`app.py:42`" in summary["body"]
    assert storage.jobs(kind="publish_scan")[-1]["status"] == "done"

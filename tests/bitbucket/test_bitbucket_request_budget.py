"""Bitbucket has no batch endpoint for PR comments and allows a repository access token about
1,000 requests an hour: a PR scan with n new findings costs at most 6 + ceil(n/50) requests
(issue #10). Every finding is shown inline as a Code Insights annotation (100 per request);
inline comments go to what fits in the budget, blocking and most severe first, and the others
are listed in the summary comment."""

from __future__ import annotations

import math

import pytest

from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.models import Finding
from tests.bitbucket.bitbucket_scenario import PR, REPO, SOURCE_BRANCH, connect, upload, upload_body
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.conftest import drain

PATH = "app/calc.py"


def _findings(text: str, n: int) -> list[Finding]:
    lines = text.split("\n")
    found = [Finding(rule_id="python.eval" if i % 5 else "python.exec", path=PATH, start_line=i + 2, end_line=i + 2,
                     message="eval of input", severity="warning" if i % 5 else "error", snippet=lines[i + 1],
                     tool="semgrep") for i in range(n)]
    return fingerprint_findings(found, {PATH: text}.get)


@pytest.mark.parametrize("n", [1, 10, 60, 1000])
def test_a_pull_request_scan_costs_at_most_6_plus_n_over_50_requests(n, client, app, storage, admin_headers,
                                                                       fake: FakeBitbucket) -> None:
    fake.add_repo(REPO)
    base = fake.add_commit(REPO, {PATH: "import ast\n"})
    text = "import ast\n" + "".join(f"x{i} = eval(s{i})\n" for i in range(n))
    head = fake.add_commit(REPO, {PATH: text})
    fake.open_pr(REPO, PR, source_branch=SOURCE_BRANCH, head=head, base=base)
    connect(client, admin_headers, fake, "repository")
    assert client.put("/api/v1/policies", headers=admin_headers,
                      json={"default": "comment", "rules": {"python.exec": "block"}}).status_code == 200
    token = storage.create_upload_token("bitbucket", REPO)
    scan = upload(client, token, upload_body(head, _findings(text, n), branch=SOURCE_BRANCH, pull_request=PR))
    assert scan["counts"]["new"] == n
    mark = len(fake.seen)
    drain(app)
    sent = fake.seen[mark:]
    assert len(sent) <= 6 + math.ceil(n / 50), "\n".join(f"{s.method} {s.path}" for s in sent)

    comments = fake.pr_comments(REPO, PR)
    inline = [c for c in comments if c.get("inline")]
    summaries = [c for c in comments if not c.get("inline")]
    assert 1 <= len(inline) <= n or (n >= 10 and inline == [])
    annotations = fake.annotations[(REPO, head, "forge-app")]
    assert len(annotations) == n  # every finding is shown inline in the diff as an annotation
    if len(inline) < n:
        [summary] = summaries
        raw = summary["content"]["raw"]
        assert f"{n - len(inline)} of these are on changed lines but past this scan's limit of {len(inline)}" in raw
        assert "request budget" in raw
        assert all("python.exec" in c["content"]["raw"] for c in inline)  # blocking ones first
    else:
        assert summaries == []
    assert fake.statuses[(REPO, head)]["forge-app"]["state"] == "FAILED"
    assert "INPROGRESS" not in [s.json().get("state") for s in sent if s.path.endswith("/statuses/build")]
    print(f"\n{n} new finding(s): {len(sent)} Bitbucket requests, {len(inline)} inline comment(s): "
          + ", ".join(f"{s.method} {s.path.split('/widgets/')[-1]}" for s in sent))

"""GitLab has no batch endpoint for MR comments: the request budget of a PR scan (6 + ceil(n/50)
requests for n new findings, issue #10) decides how many inline comments fit; the rest are listed
in the summary note, most severe and blocking ones commented first."""

from __future__ import annotations

import math
from typing import Any

import pytest

from forge_app.core.models import Finding
from storage import Storage
from tests.gitlab.fake_gitlab import FakeGitLab
from tests.gitlab.gitlab_helpers import drain, upload_body

PROJECT, PROJECT_ID, IID = "acme/budget", 4242, 3
TOKEN, SECRET = "glpat-budget-0123456789", "budget-webhook-secret"
PATH = "pkg/calc.py"


def _findings(text: str, n: int) -> list[Finding]:
    lines = text.splitlines()
    return [Finding(rule_id="python.eval" if i % 5 else "python.exec", path=PATH, start_line=i + 2,
                    end_line=i + 2, message="eval of input", severity="warning" if i % 5 else "error",
                    snippet=lines[i + 1], tool="semgrep") for i in range(n)]


@pytest.mark.parametrize("n", [1, 10, 60, 1000])
def test_a_merge_request_scan_costs_at_most_6_plus_n_over_50_requests(
        n: int, client: Any, admin_headers: dict[str, str], storage: Storage, app: Any, gitlab: FakeGitLab) -> None:
    gitlab.add_token(TOKEN, ["api"])
    project = gitlab.add_project(PROJECT, PROJECT_ID)
    base = gitlab.commit(project, {PATH: "import ast\n"}, "base")
    text = "import ast\n" + "".join(f"x{i} = eval(s{i})\n" for i in range(n))
    head = gitlab.commit(project, {PATH: text}, "head")
    gitlab.open_mr(project, IID, base, head)
    r = client.post("/api/v1/connections", headers=admin_headers, json={
        "forge": "gitlab", "base_url": gitlab.url, "scope": "project", "target": PROJECT, "token": TOKEN,
        "webhook_secret": SECRET})
    assert r.status_code == 201, r.text
    assert client.put("/api/v1/policies", headers=admin_headers,
                      json={"default": "comment", "rules": {"python.exec": "block"}}).status_code == 200
    token = storage.create_upload_token("gitlab", PROJECT)
    body = upload_body({PATH: text}, _findings(text, n), commit=head, branch="feature", pull_request=IID)
    scan = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"}).json()
    assert scan["counts"]["new"] == n
    mark = len(gitlab.requests)
    drain(app)
    sent = gitlab.requests[mark:]
    budget = 6 + math.ceil(n / 50)
    assert len(sent) <= budget, "\n".join(f"{q.method} {q.path}" for q in sent)

    mr = gitlab.mr(PROJECT_ID, IID)
    inline = [d for d in mr.discussions if not d["individual_note"]]
    summaries = [d for d in mr.discussions if d["individual_note"]]
    # versions, diffs, the summary note and the commit status are fixed; every other request is a comment
    fixed = 3 + (1 if summaries else 0)
    assert len(inline) == len(sent) - fixed == min(n, budget - 3 - (n > budget - 3))
    blocking_first = [d["notes"][0]["body"] for d in inline]
    if n > len(inline):
        [summary] = summaries
        note = summary["notes"][0]["body"]
        assert f"{n - len(inline)} of these are on changed lines but past this scan's limit of {len(inline)}" in note
        assert "request budget" in note
        assert all("python.exec" in b for b in blocking_first[: min(len(inline), math.ceil(n / 5))])
    else:
        assert summaries == []
    [status] = gitlab.statuses[(PROJECT_ID, head)]
    assert status["history"] == ["failed"]  # no "running" status: that request buys a comment
    metrics = client.get("/metrics").text
    assert 'forge_app_scan_forge_requests_bucket{forge="gitlab"' in metrics

"""Several scanners on one branch: each tool's findings are compared with that tool's baseline."""

from __future__ import annotations

from tests.web.scan_helpers import finding, upload


def tool_upload(findings, tool: str, **kw) -> dict:
    doc = upload([{**f, "tool": tool} for f in findings], **kw)
    doc["tools"] = [tool]
    return doc


BANDIT = [finding(rule=f"B{n}", line=n, code=f"assert x{n}") for n in range(1, 6)]
SEMGREP = [finding(rule="python.lang.eval", line=40, code="eval(x)")]


def test_two_tools_uploading_to_one_branch_do_not_fix_each_others_findings(client, upload_token):
    auth = {"Authorization": f"Bearer {upload_token}"}
    first = client.post("/api/v1/scans", json=tool_upload(BANDIT, "Bandit"), headers=auth).json()
    assert first["counts"] == {"new": 5, "fixed": 0, "unchanged": 0}
    second = client.post("/api/v1/scans", json=tool_upload(SEMGREP, "semgrep"), headers=auth).json()
    assert second["counts"] == {"new": 1, "fixed": 0, "unchanged": 0}  # not 5 fixed
    # a PR scan with both tools is compared with both baselines, and counts per tool
    both = upload([{**f, "tool": "Bandit"} for f in BANDIT[1:]] + [{**f, "tool": "semgrep"} for f in SEMGREP],
                  pr=7, branch="feature", base_branch="main")
    both["tools"] = ["Bandit", "semgrep"]
    pr = client.post("/api/v1/scans", json=both, headers=auth).json()
    assert pr["counts"] == {"new": 0, "fixed": 1, "unchanged": 5}
    assert pr["counts_by_tool"] == {"Bandit": {"new": 0, "fixed": 1, "unchanged": 4},
                                    "semgrep": {"new": 0, "fixed": 0, "unchanged": 1}}
    # a tool that ran and found nothing has fixed everything it found before
    clean = client.post("/api/v1/scans", json=tool_upload([], "semgrep"), headers=auth).json()
    assert clean["counts"] == {"new": 0, "fixed": 1, "unchanged": 0}
    assert clean["counts_by_tool"] == {"semgrep": {"new": 0, "fixed": 1, "unchanged": 0}}
    again = client.post("/api/v1/scans", json=tool_upload(BANDIT, "Bandit"), headers=auth).json()
    assert again["counts"] == {"new": 0, "fixed": 0, "unchanged": 5}


def test_summary_and_check_show_counts_per_tool_only_with_several_tools():
    from forge_app.core.review.render import Counts, check_summary, summary_comment
    from forge_app.forges.github import RENDERING as GITHUB_STYLE

    two = Counts(1, 2, 3, by_tool={"Bandit": {"new": 1, "fixed": 0, "unchanged": 3}, "a|b": {"fixed": 2}})
    for text in (check_summary(two, [], None), summary_comment([], two, None, GITHUB_STYLE)):
        assert "| Bandit | 1 | 0 | 3 |" in text and "| a/b | 0 | 2 | 0 |" in text
    one = Counts(1, 0, 0, by_tool={"semgrep": {"new": 1}})
    assert "| Tool |" not in check_summary(one, [], None) + summary_comment([], one, None, GITHUB_STYLE)

"""The GitLab client against the fake: every page is read, markers are found wherever they are."""

from __future__ import annotations

import asyncio

from forge_app.core.review.render import SUMMARY_MARKER, marker
from forge_app.forges.base import PullRequestRef
from forge_app.forges.gitlab.client import GitLabClient
from forge_app.forges.gitlab.http import GitLabApi
from tests.gitlab.fake_gitlab import FakeGitLab, sha_of

TOKEN = "glpat-client-0123456789"


def test_all_pages_of_diffs_and_discussions(gitlab: FakeGitLab) -> None:
    gitlab.add_token(TOKEN)
    project = gitlab.add_project("big/repo", 9)
    base = gitlab.commit(project, {f"src/f{i:03}.py": "a = 1\n" for i in range(130)}, "base")
    head = gitlab.commit(project, {f"src/f{i:03}.py": "a = 1\nb = 2\n" for i in range(130)}, "head")
    mr = gitlab.open_mr(project, 1, base, head)
    for n in range(140):  # other people's threads, then ours on the second page, then the summary
        body = marker(f"fp{n:03}") if n == 120 else f"review comment {n}"
        mr.discussions.append({"id": sha_of("seed", str(n)), "individual_note": False,
                               "notes": [{"id": 100 + n, "body": body, "resolvable": True, "resolved": False}]})
    mr.discussions.append({"id": sha_of("seed", "summary"), "individual_note": True,
                           "notes": [{"id": 999, "body": SUMMARY_MARKER + "\nold", "resolvable": False}]})

    client = GitLabClient(GitLabApi(gitlab.url, TOKEN), "big/repo")
    pr = PullRequestRef("big/repo", 1, head)

    async def run() -> tuple:
        files = await client.changed_files(pr)
        markers = await client.existing_markers(pr)
        summary = await client.upsert_summary(pr, SUMMARY_MARKER + "\nnew", None)
        return files, markers, summary

    files, markers, summary = asyncio.run(run())
    assert len(files) == 130 and all(f.is_added(2) for f in files.values())
    assert list(markers) == ["fp120"] and markers["fp120"].thread_id == sha_of("seed", "120")
    assert summary == f"{sha_of('seed', 'summary')}:999"  # found on page 2, edited, not posted again
    assert mr.discussions[-1]["notes"][0]["body"].endswith("new")
    pages = [r.query for r in gitlab.requests if r.path.endswith(("/diffs", "/discussions"))]
    assert pages == ["per_page=100", "per_page=100&page=2", "per_page=100", "per_page=100&page=2",
                     "per_page=100", "per_page=100&page=2"]

"""Bitbucket Cloud: its API contract shows no merge base (nor a PR's commits), so the server cannot
tell whether a PR's diff maps the base scan's lines; a PR scan without the uploader's diff is matched
by fingerprints alone, and the upload reads nothing from Bitbucket for it (docs/fingerprints.md)."""

from __future__ import annotations

from tests.bitbucket.bitbucket_scenario import REPO, connect, upload
from tests.bitbucket.fake_bitbucket import FakeBitbucket
from tests.web.forge_diff_story import BASE, CONTEXT_ALONE, HEAD, findings, places


def test_a_pull_request_scan_with_look_alikes_is_matched_by_fingerprints(client, admin_headers, storage,
                                                                         fake: FakeBitbucket):
    fake.add_repo(REPO)
    base, head = fake.add_commit(REPO, BASE), fake.add_commit(REPO, HEAD)
    fake.open_pr(REPO, 9, source_branch="feature", head=head, base=base)
    connect(client, admin_headers, fake, "repository")
    token = storage.create_upload_token("bitbucket", REPO)
    upload(client, token, {"commit": base, "branch": "main", "findings": findings(BASE), "tools": ["semgrep"]})
    seen = len(fake.requests())

    scan = upload(client, token, {"commit": head, "branch": "feature", "base_branch": "main", "pull_request": 9,
                                  "findings": findings(HEAD), "tools": ["semgrep"]})

    assert scan["status"] == "done" and scan["counts"] == {"new": 2, "fixed": 0, "unchanged": 1}
    assert places(storage.scan_findings(scan["id"])) == CONTEXT_ALONE
    assert len(fake.requests()) == seen  # no diff read at upload

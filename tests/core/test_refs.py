"""Branch names from webhooks: a huge or control-laden `ref` is dropped, never stored."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forge_app.core.refs import MAX_REF_BYTES, branch_name
from forge_app.forges.bitbucket.events import _pull_request
from forge_app.forges.github.events import compact
from forge_app.forges.gitlab.events import parse_event

HUGE = "feature/" + "x" * (1024 * 1024 - 8)  # 1 MB: passes the JSON body's own string cap


def test_real_names_are_kept() -> None:
    for name in ("main", "feature/reports", "release/2024.05", "ünïcode-ブランチ", "x" * MAX_REF_BYTES):
        assert branch_name(name) == name


def test_implausible_names_are_dropped() -> None:
    for bad in (HUGE, "x" * (MAX_REF_BYTES + 1), "é" * 600, "a\nb", "a\x00b", "a\x7fb", "", None, 7, ["main"]):
        assert branch_name(bad) is None


@given(st.text())
def test_whatever_is_kept_is_short_and_printable(text: str) -> None:
    kept = branch_name(text)
    if kept is not None:
        assert kept == text and len(kept.encode("utf-8", "surrogatepass")) <= MAX_REF_BYTES
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in kept)


def test_github_pull_request_with_a_huge_head_ref() -> None:
    doc = compact("pull_request", {
        "action": "opened", "number": 5, "installation": {"id": 1},
        "repository": {"full_name": "acme/shop", "default_branch": HUGE},
        "pull_request": {"number": 5, "head": {"sha": "a" * 40, "ref": HUGE}, "base": {"ref": "main"}}})
    assert doc is not None and doc["number"] == 5
    assert doc["head_ref"] is None and doc["default_branch"] is None and doc["base_ref"] == "main"


def test_gitlab_merge_request_with_a_huge_source_branch() -> None:
    event = parse_event("merge_request", {
        "object_kind": "merge_request", "project": {"path_with_namespace": "acme/shop", "id": 3,
                                                    "default_branch": HUGE},
        "object_attributes": {"iid": 4, "action": "open", "state": "opened", "source_branch": HUGE,
                              "target_branch": "main", "last_commit": {"id": "b" * 40}}})
    assert event is not None and event.iid == 4
    assert event.source_branch is None and event.default_branch is None and event.target_branch == "main"


def test_bitbucket_pull_request_with_a_huge_source_branch() -> None:
    pr = _pull_request({"pullrequest": {"id": 9, "source": {"branch": {"name": HUGE}},
                                        "destination": {"branch": {"name": "main"}}}})
    assert pr is not None and pr["source_branch"] is None and pr["destination_branch"] == "main"

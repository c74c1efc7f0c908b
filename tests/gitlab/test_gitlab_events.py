"""Webhook payloads -> the few facts the app acts on (real deliveries from the fixtures)."""

from __future__ import annotations

import pytest

from forge_app.forges.gitlab.events import GitLabEvent, event_kind, parse_event
from tests.gitlab.gitlab_helpers import fixture


def _event(name: str, header: str | None = None) -> GitLabEvent:
    doc = fixture(name)
    event = parse_event(event_kind(header, doc), doc)
    assert event is not None
    return event


@pytest.mark.parametrize("name, action", [
    ("captured/merge_request.open", "open"),
    ("docs/merge_request.open", "open"),
    ("captured/merge_request.reopen", "reopen"),
    ("captured/merge_request.update-new-commits-oldrev", "update"),
    ("captured/merge_request.merge", "merge"),
    ("captured/merge_request.close", "close"),
])
def test_merge_request_events_that_need_work(name: str, action: str) -> None:
    event = _event(name, "Merge Request Hook")
    assert event.kind == "merge_request" and event.action == action
    assert event.ignore_reason() is None
    assert event.iid and event.project and event.head_sha and len(event.head_sha) == 40


def test_update_with_code_changes_keeps_oldrev_and_new_head() -> None:
    event = _event("captured/merge_request.update-new-commits-oldrev")
    assert event.oldrev == "8b641937b7340066d882b9d8a8cc5b0573a207de"
    assert event.head_sha == "c136499ec574e1034b24c5d306de9acda3005367"
    assert event.project == "anbraten/woodpecker" and event.project_id == 32059612


@pytest.mark.parametrize("name", ["captured/merge_request.update-title-description",
                                  "captured/merge_request.update-no-code-change",
                                  "captured/merge_request.approved"])
def test_updates_without_code_changes_and_approvals_need_nothing(name: str) -> None:
    assert _event(name).ignore_reason() is not None


def test_integrations_say_service_hook_so_object_kind_decides() -> None:
    doc = fixture("captured/merge_request.open")
    assert event_kind("Service Hook", doc) == "merge_request"
    assert event_kind(None, doc) == "merge_request"
    assert event_kind("Merge Request Hook", doc) == "merge_request"
    push = fixture("captured/push")
    assert event_kind("System Hook", push) == "push"


def test_push_to_the_default_branch_only() -> None:
    docs_push = _event("docs/push", "Push Hook")
    captured = _event("captured/push", "Push Hook")
    # captured: a push to main of a project whose default branch is develop
    assert captured.ref == "refs/heads/main" and captured.default_branch == "develop"
    assert captured.ignore_reason() == "push to a branch other than the default branch"
    assert docs_push.kind == "push"
    assert (docs_push.ignore_reason() is None) == (docs_push.ref == f"refs/heads/{docs_push.default_branch}")


def test_pipeline_events_are_ignored() -> None:
    event = _event("docs/pipeline", "Pipeline Hook")
    assert event.kind == "pipeline" and event.ignore_reason() is not None


def test_payload_round_trip() -> None:
    event = _event("captured/merge_request.update-new-commits-oldrev")
    assert GitLabEvent.from_payload(event.to_payload()) == event
    assert GitLabEvent.from_payload(dict(event.to_payload(), connection_id=3)) == event


def test_payload_without_project_is_not_an_event() -> None:
    assert parse_event("merge_request", {"object_kind": "merge_request"}) is None

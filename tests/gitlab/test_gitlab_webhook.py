"""`POST /webhooks/gitlab`: token check, de-duplication, 202 at once, work in a job."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from forge_app.forges import registry
from forge_app.forges.gitlab.publish import MR_OBJECT
from forge_app.security.crypto import encrypt
from storage import Storage
from tests.conftest import SECRET_KEY
from tests.gitlab.gitlab_helpers import adapt, delivery_headers, drain, fixture

SECRET = "s3cret-webhook-token"
PROJECT, PROJECT_ID = "acme/shop", 321


def connect(storage: Storage, *, scope: str = "project", target: str = PROJECT, secret: str = SECRET,
            info: dict[str, Any] | None = None) -> int:
    c = storage.create_connection(forge="gitlab", base_url="https://gitlab.example.com", scope=scope, target=target,
                                  token_enc=encrypt(SECRET_KEY, "glpat-x"),
                                  webhook_secret_enc=encrypt(SECRET_KEY, secret), info=info or {})
    return c.id


def mr_open(**kwargs: Any) -> dict[str, Any]:
    return adapt(fixture("captured/merge_request.open"), project=PROJECT, project_id=PROJECT_ID, iid=7, **kwargs)


def post(client: Any, doc: dict[str, Any], token: str = SECRET, **kwargs: Any) -> Any:
    return client.post("/webhooks/gitlab", content=json.dumps(doc), headers=delivery_headers(doc, token, **kwargs))


def jobs(storage: Storage) -> list[dict[str, Any]]:
    return storage.jobs(kind="gitlab_event")


def test_merge_request_opened_is_queued_then_processed(client, storage: Storage, app) -> None:
    connection_id = connect(storage)
    r = post(client, mr_open())
    assert r.status_code == 202 and r.json() == {"status": "queued", "event": "merge_request.open"}
    assert len(jobs(storage)) == 1
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert repo is not None and repo.connection_id == connection_id and repo.default_branch == "main"
    state = storage.forge_object(repo.id, "pr:7", MR_OBJECT)
    assert state["state"] == "opened" and state["head_sha"] == "2f7670508b771e7e77839402be8b34b13787aba8"


def test_wrong_token_is_401_and_queues_nothing(client, storage: Storage) -> None:
    connect(storage)
    wrong = post(client, mr_open(), token="not-the-secret")
    missing = client.post("/webhooks/gitlab", content=json.dumps(mr_open()),
                          headers={"X-Gitlab-Event": "Merge Request Hook"})
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["error"] == "invalid_token"
    assert jobs(storage) == [] and storage.find_repository("gitlab", PROJECT) is None


def test_project_without_connection_gets_the_same_401(client, storage: Storage) -> None:
    connect(storage, target="acme/other")
    doc = mr_open()
    no_connection = post(client, doc)
    connect(storage)
    wrong_token = post(client, doc, token="nope")
    assert no_connection.status_code == wrong_token.status_code == 401
    assert no_connection.json() == wrong_token.json()


def test_malformed_json_is_400(client, storage: Storage) -> None:
    connect(storage)
    r = client.post("/webhooks/gitlab", content=b'{"object_kind": "merge_request", ',
                    headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Merge Request Hook"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = client.post("/webhooks/gitlab", content=b"[1, 2]", headers={"X-Gitlab-Token": SECRET})
    assert r.status_code == 400


def test_body_size_is_limited(client, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(storage)
    gitlab = registry.FORGES["gitlab"]
    monkeypatch.setitem(registry.FORGES, "gitlab",
                        dataclasses.replace(gitlab, webhook=dataclasses.replace(gitlab.webhook, max_bytes=1000)))
    r = post(client, mr_open())
    assert r.status_code == 413


def test_redelivery_with_the_same_idempotency_key_changes_nothing(client, storage: Storage, app) -> None:
    connect(storage)
    doc = mr_open()
    first = post(client, doc, key="f5e5f430-f57b-4e6e-9fac-d9128cd7232f")
    again = post(client, doc, key="f5e5f430-f57b-4e6e-9fac-d9128cd7232f")
    assert first.json()["status"] == "queued" and again.status_code == 202 and again.json()["status"] == "duplicate"
    assert len(jobs(storage)) == 1
    drain(app)
    assert post(client, doc, key="f5e5f430-f57b-4e6e-9fac-d9128cd7232f").json()["status"] == "duplicate"
    assert drain(app) == 0


def test_event_uuid_is_the_fallback_dedup_key(client, storage: Storage) -> None:
    connect(storage)
    doc = mr_open()
    headers = delivery_headers(doc, SECRET)
    del headers["Idempotency-Key"]
    assert client.post("/webhooks/gitlab", content=json.dumps(doc), headers=headers).json()["status"] == "queued"
    assert client.post("/webhooks/gitlab", content=json.dumps(doc), headers=headers).json()["status"] == "duplicate"


def test_integrations_send_service_hook(client, storage: Storage) -> None:
    connect(storage)
    r = post(client, mr_open(), event="Service Hook")
    assert r.status_code == 202 and r.json()["event"] == "merge_request.open"


def test_title_only_update_does_nothing(client, storage: Storage) -> None:
    connect(storage)
    doc = adapt(fixture("captured/merge_request.update-title-description"), project=PROJECT, project_id=PROJECT_ID)
    r = post(client, doc)
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    assert jobs(storage) == [] and storage.find_repository("gitlab", PROJECT) is None


def test_update_with_new_commits_records_the_new_head(client, storage: Storage, app) -> None:
    connect(storage)
    doc = adapt(fixture("captured/merge_request.update-new-commits-oldrev"), project=PROJECT, project_id=PROJECT_ID)
    assert post(client, doc).json() == {"status": "queued", "event": "merge_request.update"}
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert storage.forge_object(repo.id, "pr:3", MR_OBJECT)["head_sha"] == "c136499ec574e1034b24c5d306de9acda3005367"


def test_merged_stays_merged(client, storage: Storage, app) -> None:
    connect(storage)
    merged = adapt(fixture("captured/merge_request.merge"), project=PROJECT, project_id=PROJECT_ID, iid=4)
    late = adapt(fixture("captured/merge_request.update-new-commits-oldrev"), project=PROJECT, project_id=PROJECT_ID,
                 iid=4)
    late["object_attributes"]["state"] = "opened"
    post(client, merged)
    drain(app)
    post(client, late)
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert storage.forge_object(repo.id, "pr:4", MR_OBJECT)["state"] == "merged"


def test_close_is_recorded(client, storage: Storage, app) -> None:
    connect(storage)
    post(client, adapt(fixture("captured/merge_request.close"), project=PROJECT, project_id=PROJECT_ID, iid=4))
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert storage.forge_object(repo.id, "pr:4", MR_OBJECT)["state"] == "closed"


def test_push_to_the_default_branch(client, storage: Storage, app) -> None:
    connect(storage)
    other = adapt(fixture("captured/push"), project=PROJECT, project_id=PROJECT_ID, default_branch="trunk")
    assert post(client, other).json()["status"] == "ignored"  # refs/heads/main is not the default branch
    default = adapt(fixture("captured/push"), project=PROJECT, project_id=PROJECT_ID, default_branch="trunk",
                    ref="refs/heads/trunk")
    assert post(client, default).json() == {"status": "queued", "event": "push"}
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert repo.default_branch == "trunk"
    assert storage.forge_object(repo.id, "branch:trunk", "gitlab_head") == {
        "sha": "16862e368d8ab812e48833b741dad720d6e2cb7f"}


def test_group_connection_covers_its_projects(client, storage: Storage) -> None:
    connect(storage, scope="group", target="acme")
    assert post(client, mr_open()).status_code == 202


def test_numeric_project_connection_matches_by_recorded_id(client, storage: Storage) -> None:
    connect(storage, target=str(PROJECT_ID), info={"project_id": PROJECT_ID, "path_with_namespace": PROJECT})
    assert post(client, mr_open()).status_code == 202
    assert post(client, mr_open(), token="nope").status_code == 401


def test_numeric_project_connection_needs_no_project_lookup(client, storage: Storage, app) -> None:
    """The connection check learns no path (it asks GitLab nothing outside the contract): webhooks
    match the numeric target on the project id they carry, and the project they tie to the
    connection is published through it."""
    from forge_app.forges.gitlab.lookup import connection_for_project

    connection_id = connect(storage, target=str(PROJECT_ID), info={"checked": "commit status write"})
    assert connection_for_project(storage, PROJECT) is None  # nothing tells the path yet
    assert post(client, mr_open()).status_code == 202
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    assert repo is not None and repo.connection_id == connection_id
    found = connection_for_project(storage, PROJECT, repository_id=repo.id)
    assert found is not None and found.id == connection_id


def test_docs_example_delivery(client, storage: Storage) -> None:
    doc = fixture("docs/merge_request.open")
    connect(storage, target=doc["project"]["path_with_namespace"])
    r = post(client, doc)
    assert r.status_code == 202 and r.json()["status"] == "queued"


def test_a_default_branch_learned_from_a_push_survives_publishing(client, storage: Storage, app) -> None:
    from forge_app.forges.gitlab.publish import _link_repository

    connection_id = connect(storage, info={"default_branch": "main"})
    post(client, adapt(fixture("captured/push"), project=PROJECT, project_id=PROJECT_ID, default_branch="trunk",
                       ref="refs/heads/trunk"))
    drain(app)
    repo = storage.find_repository("gitlab", PROJECT)
    _link_repository(storage, repo.id, storage.connection(connection_id))  # what a publish run does
    assert storage.find_repository("gitlab", PROJECT).default_branch == "trunk"

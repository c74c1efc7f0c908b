"""`POST /webhooks/gitlab`: check the delivery's token, record it once, answer 202 at once.

GitLab sends the configured secret verbatim in `X-Gitlab-Token` (no signature), so it
is compared in constant time with the secret of the connection covering the project.
A project no connection covers gets the same 401 as a wrong token: nothing tells a
caller which projects are connected. Work happens later in a `gitlab_event` job.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forge_app.config import MB, Settings
from forge_app.forges.gitlab.events import event_kind, parse_event, project_of
from forge_app.forges.gitlab.lookup import connection_for_project
from forge_app.security.crypto import SecretsUnavailable, decrypt
from forge_app.web import metrics
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import ApiError
from storage import Connection, Storage

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 25 * MB
JOB_KIND = "gitlab_event"
_DUMMY = b"forge-app: no connection covers this project"


def _token_matches(settings: Settings, connection: Connection | None, token: str) -> bool:
    expected = _DUMMY
    if connection is not None:
        try:
            expected = decrypt(settings.secret_key, connection.webhook_secret_enc).encode()
        except SecretsUnavailable:
            log.error("GitLab connection %s: its webhook secret cannot be decrypted (FORGE_APP_SECRET_KEY changed?)",
                      connection.id)
            connection = None
    same = hmac.compare_digest(token.encode(), expected)  # always compare, so timing says nothing
    return same and connection is not None


def delivery_id(request: Request, raw: bytes) -> str:
    """`Idempotency-Key` is stable across GitLab's retries (17.4+); older GitLab sends only
    `X-Gitlab-Event-UUID`; as a last resort identical bodies are the same delivery."""
    for header in ("idempotency-key", "x-gitlab-event-uuid"):
        value = request.headers.get(header, "").strip()
        if value:
            return value[:200]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


async def receive(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    storage: Storage = request.app.state.storage
    raw = await read_raw(request, MAX_WEBHOOK_BYTES)
    doc = parse_json(raw)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_payload", "a GitLab webhook body is a JSON object")
    project = project_of(doc)
    if project is None:
        raise ApiError(400, "invalid_payload", "the payload names no project (project.path_with_namespace)")
    path, project_id = project
    # Storage lookups and decryption run in the thread pool: the event loop only answers.
    connection = await run_in_threadpool(connection_for_project, storage, path, project_id)
    matches = await run_in_threadpool(_token_matches, settings, connection, request.headers.get("x-gitlab-token", ""))
    if not matches:
        raise ApiError(401, "invalid_token",
                       "X-Gitlab-Token does not match the webhook secret of a forge-app connection for this project")
    assert connection is not None
    kind = event_kind(request.headers.get("x-gitlab-event"), doc)
    event = parse_event(kind, doc)
    reason = event.ignore_reason() if event is not None else f"{kind} payload without the fields needed"
    if event is None or reason is not None:
        log.info("GitLab %s for %s ignored: %s", kind, path, reason)
        metrics.webhook_delivery("gitlab", "accepted")
        return JSONResponse({"status": "ignored", "event": kind, "reason": reason}, status_code=202)
    repo = await run_in_threadpool(storage.ensure_repository, "gitlab", path)
    payload = dict(event.to_payload(), connection_id=connection.id)
    accepted = await storage.accept_delivery_async("gitlab", delivery_id(request, raw), event.name, kind=JOB_KIND,
                                                   payload=payload, group=f"repo:{repo.id}")
    metrics.webhook_delivery("gitlab", "accepted" if accepted else "duplicate")
    if accepted:
        wake = getattr(request.app.state, "wake_worker", None)
        if wake is not None:
            wake()
    log.info("GitLab %s for %s: %s", event.name, path, "queued" if accepted else "redelivery, already queued")
    return JSONResponse({"status": "queued" if accepted else "duplicate", "event": event.name}, status_code=202)

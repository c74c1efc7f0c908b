"""`POST /webhooks/gitlab`: GitLab's side of the one webhook receiver (forge_app/web/routes/webhooks.py).

GitLab sends the configured secret verbatim in `X-Gitlab-Token` (no signature), so it
is compared in constant time with the secret of the connection covering the project.
A project no connection covers gets the same 401 as a wrong token: nothing tells a
caller which projects are connected. Work happens later in a `gitlab_event` job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from forge_app.config import MB, Settings
from forge_app.forges.gitlab.events import event_kind, parse_event, project_of
from forge_app.forges.gitlab.lookup import connection_for_project
from forge_app.forges.webhooks import Answer, Delivery, Intake, Key, Refused, Webhook
from forge_app.security.crypto import SecretsUnavailable, decrypt
from storage import Storage

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 25 * MB
JOB_KIND = "gitlab_event"
_DUMMY = b"forge-app: no connection covers this project"


def connection_secret(settings: Settings, storage: Storage, doc: Any) -> Key:
    """The webhook secret of the connection covering the project the body names (storage, decryption)."""
    if not isinstance(doc, dict):
        return Key(None, refusal=Refused(400, "invalid_payload", "a GitLab webhook body is a JSON object"))
    project = project_of(doc)
    if project is None:
        return Key(None, refusal=Refused(400, "invalid_payload",
                                         "the payload names no project (project.path_with_namespace)"))
    connection = connection_for_project(storage, *project)
    if connection is None:
        return Key(None)
    try:
        return Key(decrypt(settings.secret_key, connection.webhook_secret_enc), owner=connection.id)
    except SecretsUnavailable:
        log.error("GitLab connection %s: its webhook secret cannot be decrypted (FORGE_APP_SECRET_KEY changed?)",
                  connection.id)
        return Key(None)


def delivery_id(headers: Mapping[str, str], raw: bytes) -> str:
    """`Idempotency-Key` is stable across GitLab's retries (17.4+); older GitLab sends only
    `X-Gitlab-Event-UUID`; as a last resort identical bodies are the same delivery."""
    for header in ("idempotency-key", "x-gitlab-event-uuid"):
        value = (headers.get(header) or "").strip()
        if value:
            return value[:200]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def check(headers: Mapping[str, str], body: bytes, key: Key, doc: Any) -> Delivery:
    """`X-Gitlab-Token` against the connection's secret, always compared, so timing says nothing."""
    if key.refusal is not None:
        raise key.refusal
    token = headers.get("x-gitlab-token") or ""
    same = hmac.compare_digest(token.encode(), key.secret.encode() if key.secret else _DUMMY)
    if not same or key.secret is None:
        raise Refused(401, "invalid_token",
                      "X-Gitlab-Token does not match the webhook secret of a forge-app connection for this project")
    return Delivery(event_kind(headers.get("x-gitlab-event"), doc), delivery_id(headers, body), owner=key.owner)


def intake(delivery: Delivery, doc: Any) -> Answer | Intake:
    kind = delivery.event
    event = parse_event(kind, doc)
    reason = event.ignore_reason() if event is not None else f"{kind} payload without the fields needed"
    if event is None or reason is not None:
        log.info("GitLab %s ignored: %s", kind, reason)
        return Answer(202, {"status": "ignored", "event": kind, "reason": reason})
    queued = Intake(event.name, delivery.delivery_id, JOB_KIND, dict(event.to_payload(), connection_id=delivery.owner),
                    accepted=Answer(202, {"status": "queued", "event": event.name}),
                    duplicate=Answer(202, {"status": "duplicate", "event": event.name}))

    def in_repository_group(storage: Storage) -> Intake:
        repo = storage.ensure_repository("gitlab", event.project)
        return dataclasses.replace(queued, group=f"repo:{repo.id}")

    return dataclasses.replace(queued, prepare=in_repository_group)


WEBHOOK = Webhook(max_bytes=MAX_WEBHOOK_BYTES, secret=connection_secret, check=check, intake=intake,
                  reads_body_first=True, delivery_headers=("idempotency-key", "x-gitlab-event-uuid"),
                  event_header="X-Gitlab-Event",
                  auth="X-Gitlab-Token (the connection's webhook secret, compared in constant time)")

"""`POST /webhooks/bitbucket`: Bitbucket's side of the one webhook receiver (forge_app/web/routes/webhooks.py).

The secret belongs to the connection covering the payload's repository, so the body is
parsed before the signature can be checked; nothing in it is trusted or stored until
the signature matches. A bad or missing signature and an uncovered repository get the
same 401, so a caller cannot probe which repositories are connected.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from forge_app.config import Settings
from forge_app.forges.bitbucket import FORGE
from forge_app.forges.bitbucket.connection import connection_secret, covering_connection
from forge_app.forges.bitbucket.events import EVENT_JOB, HANDLED_EVENTS, job_payload
from forge_app.forges.webhooks import Answer, Delivery, Intake, Key, Refused, Webhook
from storage import Storage

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024
_DUMMY_SECRET = b"forge-app: no connection covers this repository"


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").strip().lower().encode())


def _repository(doc: Any) -> str | None:
    repo = doc.get("repository") if isinstance(doc, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and "/" in name else None


def repository_secret(settings: Settings, storage: Storage, doc: Any) -> Key:
    """The webhook secret of the connection covering the repository the body names (storage, decryption)."""
    if not isinstance(doc, dict):
        return Key(None, refusal=Refused(400, "invalid_payload", "a Bitbucket webhook body is a JSON object"))
    full_name = _repository(doc)
    connection = covering_connection(storage, full_name) if full_name else None
    if connection is None:
        return Key(None)
    secret = connection_secret(settings, connection)
    if secret is None:
        log.warning("the webhook secret of Bitbucket connection %s cannot be decrypted (FORGE_APP_SECRET_KEY "
                    "changed?)", connection.id)
        return Key(None)
    return Key(secret, owner=(connection.id, full_name))


def check(headers: Mapping[str, str], body: bytes, key: Key, _doc: Any) -> Delivery:
    """Always one HMAC, so an uncovered repository costs the same time as a wrong signature."""
    if key.refusal is not None:
        raise key.refusal
    valid = signature_matches(key.secret.encode() if key.secret else _DUMMY_SECRET, body,
                              headers.get("x-hub-signature"))
    if key.secret is None or not valid:
        raise Refused(401, "invalid_signature",
                      "X-Hub-Signature is missing or does not match the webhook secret of this repository's "
                      "Bitbucket connection")
    event = (headers.get("x-event-key") or "").strip()
    delivery = (headers.get("x-request-uuid") or "").strip() or "sha256:" + hashlib.sha256(body).hexdigest()
    return Delivery(event, delivery, owner=key.owner)


def intake(delivery: Delivery, doc: Any) -> Answer | Intake:
    event = delivery.event
    ignored = Answer(202, {"status": "ignored", "event": event})
    if event not in HANDLED_EVENTS:
        return ignored
    connection_id, full_name = delivery.owner

    def with_main_branch(storage: Storage) -> Intake | Answer:
        """A push matters only on the main branch, which storage may already know."""
        known = storage.find_repository(FORGE, full_name)
        payload = job_payload(event, doc, full_name, connection_id, known.default_branch if known else None)
        if payload is None:
            return ignored
        return Intake(event, delivery.delivery_id, EVENT_JOB, payload,
                      accepted=Answer(202, {"status": "accepted", "event": event}),
                      duplicate=Answer(202, {"status": "duplicate", "event": event}),
                      group=f"{FORGE}:{full_name.lower()}")

    return Intake(event, delivery.delivery_id, EVENT_JOB, {}, accepted=ignored, duplicate=ignored,
                  prepare=with_main_branch)


WEBHOOK = Webhook(max_bytes=MAX_BODY, secret=repository_secret, check=check, intake=intake, reads_body_first=True,
                  delivery_headers=("x-request-uuid",), event_header="X-Event-Key",
                  auth="X-Hub-Signature (sha256= HMAC of the body with the connection's secret)")

"""`POST /webhooks/bitbucket`: verify, de-duplicate, queue, answer 202 at once.

The secret belongs to the connection covering the payload's repository, so the body is
parsed before the signature can be checked; nothing in it is trusted or stored until
the signature matches. A bad or missing signature and an uncovered repository get the
same 401, so a caller cannot probe which repositories are connected.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forge_app.forges.bitbucket import FORGE
from forge_app.forges.bitbucket.connection import connection_secret, covering_connection
from forge_app.forges.bitbucket.events import EVENT_JOB, HANDLED_EVENTS, job_payload
from forge_app.web import metrics
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import ApiError

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024
_DUMMY_SECRET = b"forge-app: no connection covers this repository"


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").strip().lower().encode())


def _unauthorized() -> ApiError:
    return ApiError(401, "invalid_signature",
                    "X-Hub-Signature is missing or does not match the webhook secret of this repository's "
                    "Bitbucket connection")


def _repository(doc: Any) -> str | None:
    repo = doc.get("repository") if isinstance(doc, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and "/" in name else None


async def receive(request: Request) -> Response:
    body = await read_raw(request, MAX_BODY)
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_payload", "a Bitbucket webhook body is a JSON object")
    storage = request.app.state.storage
    settings = request.app.state.settings
    full_name = _repository(doc)
    # Storage lookups and decryption run in the thread pool: the event loop only answers.
    connection = await run_in_threadpool(covering_connection, storage, full_name) if full_name else None
    secret = await run_in_threadpool(connection_secret, settings, connection) if connection else None
    if connection is not None and secret is None:
        log.warning("the webhook secret of Bitbucket connection %s cannot be decrypted (FORGE_APP_SECRET_KEY "
                    "changed?)", connection.id)
    header = request.headers.get("x-hub-signature")
    # Always compute one HMAC, so an uncovered repository costs the same time as a wrong signature.
    valid = signature_matches(secret.encode() if secret else _DUMMY_SECRET, body, header)
    if connection is None or secret is None or not valid:
        raise _unauthorized()
    assert full_name is not None

    event = request.headers.get("x-event-key", "").strip()
    if event not in HANDLED_EVENTS:
        metrics.webhook_delivery(FORGE, "accepted")
        return JSONResponse({"status": "ignored", "event": event}, status_code=202)
    known = await run_in_threadpool(storage.find_repository, FORGE, full_name)
    payload = job_payload(event, doc, full_name, connection.id, known.default_branch if known else None)
    if payload is None:
        metrics.webhook_delivery(FORGE, "accepted")
        return JSONResponse({"status": "ignored", "event": event}, status_code=202)
    delivery = request.headers.get("x-request-uuid", "").strip() or "sha256:" + hashlib.sha256(body).hexdigest()
    accepted = await storage.accept_delivery_async(FORGE, delivery, event, kind=EVENT_JOB, payload=payload,
                                                   group=f"{FORGE}:{full_name.lower()}")
    if not accepted:
        metrics.webhook_delivery(FORGE, "duplicate")
        return JSONResponse({"status": "duplicate", "event": event}, status_code=202)
    metrics.webhook_delivery(FORGE, "accepted")
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
    return JSONResponse({"status": "accepted", "event": event}, status_code=202)

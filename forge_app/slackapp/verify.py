"""One verification for every request from Slack (events, commands, interactions).

slack_sdk's SignatureVerifier does the HMAC (`v0:<ts>:<raw body>`, constant-time compare,
5-minute window); the window is checked first here only to say which check failed.
A verified signature seen before is a replay: no second effect.
"""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request

from forge_app.slackapp import configured
from forge_app.web.body import read_raw
from forge_app.web.errors import ApiError

WINDOW = 300
MAX_BODY = 1024 * 1024  # Slack's payloads are a few KB; a modal submission stays far below this


def require_configured(request: Request) -> None:
    if not configured(request.app.state.settings):
        raise ApiError(404, "slack_app_not_configured", "the Slack app is off: set SLACK_CLIENT_ID, "
                       "SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET on the server")


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "invalid_signature", detail)


async def verified_body(request: Request, *, now: float | None = None) -> bytes:
    """The raw body of a request Slack signed, or a 401 (nothing else happens)."""
    require_configured(request)
    settings = request.app.state.settings
    body = await read_raw(request, MAX_BODY)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise _unauthorized("X-Slack-Request-Timestamp and X-Slack-Signature are required")
    try:
        ts = int(timestamp)
    except ValueError:
        raise _unauthorized("X-Slack-Request-Timestamp is not a whole number of seconds") from None
    clock = time.time() if now is None else now
    if abs(clock - ts) > WINDOW:
        raise _unauthorized("X-Slack-Request-Timestamp is more than 5 minutes from the server's clock")
    if not SignatureVerifier(settings.slack_signing_secret).is_valid(body, timestamp, signature):
        raise _unauthorized("X-Slack-Signature does not match the body and SLACK_SIGNING_SECRET")
    if not request.app.state.storage.first_slack_request(signature):
        raise ApiError(401, "replayed_request", "this exact signed request was received before")
    return body

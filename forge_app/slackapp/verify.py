"""One verification for every request from Slack (events, commands, interactions).

slack_sdk's SignatureVerifier does the HMAC (`v0:<ts>:<raw body>`, constant-time compare,
5-minute window); the window is checked first here only to say which check failed.
A command or interaction whose verified signature was seen before is a replay: 401, no effect.
"""

from __future__ import annotations

import time

from slack_sdk.signature import Clock, SignatureVerifier
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from forge_app.slackapp import configured
from forge_app.web import metrics
from forge_app.web.body import read_raw
from forge_app.web.errors import ApiError

WINDOW = 300
MAX_BODY = 1024 * 1024  # Slack's payloads are a few KB; a modal submission stays far below this


class _At(Clock):
    """The clock this request was judged by, so the SDK and the window check agree."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def require_configured(request: Request) -> None:
    if not configured(request.app.state.settings):
        raise ApiError(404, "slack_app_not_configured", "the Slack app is off: set SLACK_CLIENT_ID, "
                       "SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET on the server")


def _unauthorized(detail: str) -> ApiError:
    metrics.webhook_delivery("slack", "rejected")
    return ApiError(401, "invalid_signature", detail)


async def verified_body(request: Request, *, replay_guard: bool = True, now: float | None = None) -> bytes:
    """The raw body of a request Slack signed, or a 401 (nothing else happens).

    Events skip the replay guard: Slack's own retries may repeat the very bytes within a
    second, and an event's `event_id` already makes a second delivery a no-op."""
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
    try:
        body.decode("utf-8")  # what Slack signs is UTF-8 text; the SDK would fail on anything else
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_body", "the body is not UTF-8 text as Slack sends it") from None
    if not SignatureVerifier(settings.slack_signing_secret, clock=_At(clock)).is_valid(body, timestamp, signature):
        raise _unauthorized("X-Slack-Signature does not match the body and SLACK_SIGNING_SECRET")
    if replay_guard and not await run_in_threadpool(request.app.state.storage.first_slack_request, signature):
        metrics.webhook_delivery("slack", "duplicate")
        raise ApiError(401, "replayed_request", "this exact signed request was received before")
    return body

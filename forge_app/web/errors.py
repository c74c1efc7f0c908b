"""Every error is JSON `{"error": code, "detail": sentence}` with a fitting status."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from forge_app.services.leases import Busy
from storage.errors import is_unavailable

log = logging.getLogger(__name__)
RETRY_AFTER = 5  # seconds, in the 503 answered while the database is unreachable

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
          422: "unprocessable", 429: "rate_limited", 500: "internal_error", 503: "unavailable"}


_ID_RE = re.compile(r"[0-9]{1,18}")


def path_id(request: Request, name: str, what: str) -> int:
    """A row id from the URL: ASCII digits only (`str.isdigit` takes "¹", `int` takes "٣") and
    within SQLite's integers; anything else names no row, so 404."""
    raw = request.path_params[name]
    if not isinstance(raw, str) or not _ID_RE.fullmatch(raw):
        raise ApiError(404, "not_found", f"no {what} {raw[:40]!r}" if isinstance(raw, str) else f"no such {what}")
    return int(raw)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.detail, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        detail = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), detail, exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ClientDisconnect):
        # The client went away mid-request (a cancelled CI job): nothing failed on our side.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return error_response(400, "client_disconnected", "the client closed the connection before the body was read")
    if isinstance(exc, RecursionError):
        return error_response(400, "invalid_json", "the body is nested too deeply to read")
    if is_unavailable(exc) or isinstance(exc, Busy):
        # Nothing was stored, nothing acknowledged: the forge (or client) sends it again later.
        log.warning("%s %s: %s; answered 503", request.method, request.url.path,
                    "busy" if isinstance(exc, Busy) else "the database is unreachable")
        return error_response(503, "unavailable", "the server cannot store this right now; retry later",
                              {"Retry-After": str(RETRY_AFTER)})
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "the server failed to handle this request; see its log")

"""`GET /api/v1/jobs?state=…` and `POST /api/v1/jobs/{id}/retry` (admin): dead jobs visible, re-runnable.

A job that gave up (its attempts spent, or a permanent error) is `dead`; after fixing the
cause (a forge token, an unreachable integration) an operator retries it: it runs again
at once with fresh attempts. Handlers are idempotent, so a retry never shows a user
anything twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from forge_app.web.auth import require_admin
from forge_app.web.errors import ApiError, path_id
from forge_app.web.routes.openapi import error_responses

LISTED_STATES = ("dead", "queued", "running")
MAX_LIMIT = 500
_STATE_OF_STATUS = {"failed": "dead", "queued": "queued", "running": "running", "done": "done",
                    "cancelled": "cancelled"}


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def job_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "kind": row["kind"], "group": row["group_key"],
        "state": _STATE_OF_STATUS.get(row["status"], row["status"]),
        "attempts": row["attempts"], "max_attempts": row["max_attempts"], "last_error": row["last_error"],
        "run_at": _when(row["run_at"]), "locked_by": row["locked_by"], "lease_until": _when(row["locked_until"]),
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return value


async def list_jobs(request: Request) -> JSONResponse:
    require_admin(request)
    state = request.query_params.get("state", "dead")
    if state not in LISTED_STATES:
        raise ApiError(400, "invalid_state", f"state must be one of {', '.join(LISTED_STATES)}")
    limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)
    before = _int_param(request, "before", None, 1, 2**62)
    rows = await run_in_threadpool(request.app.state.storage.list_jobs, state, limit=limit, before_id=before)
    return JSONResponse([job_view(r) for r in rows])


async def retry_job(request: Request) -> JSONResponse:
    require_admin(request)
    job_id = path_id(request, "job_id", "job")  # ASCII digits within int64 ("¹" and 2**63 were 500s), else 404
    storage = request.app.state.storage
    previous = await run_in_threadpool(storage.requeue_job, job_id)
    if previous is None:
        raise ApiError(404, "not_found", "no job with this id")
    if previous in ("running", "done"):
        state = _STATE_OF_STATUS[previous]
        raise ApiError(409, "job_not_retryable",
                       f"the job is {state}: only dead, cancelled or queued jobs can be retried")
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
    row = await run_in_threadpool(storage.job, job_id)
    return JSONResponse(job_view(row), status_code=202)


routes = [
    Route("/api/v1/jobs", list_jobs, methods=["GET"]),
    Route("/api/v1/jobs/{job_id}/retry", retry_job, methods=["POST"]),
]

_JOB = {"$ref": "#/components/schemas/Job"}
OPENAPI_SCHEMAS = {
    "Job": {
        "type": "object",
        "required": ["id", "kind", "group", "state", "attempts", "last_error", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string", "example": "publish_scan"},
            "group": {"type": "string", "nullable": True, "description": "jobs of one group run one at a time"},
            "state": {"type": "string", "enum": ["queued", "running", "dead", "done", "cancelled"]},
            "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"},
            "last_error": {"type": "string", "nullable": True},
            "run_at": {"type": "string", "format": "date-time", "nullable": True},
            "locked_by": {"type": "string", "nullable": True},
            "lease_until": {"type": "string", "format": "date-time", "nullable": True},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
}
OPENAPI_PATHS = {
    "/api/v1/jobs": {
        "get": {
            "summary": "Jobs in one state, newest first (default: dead)", "security": [{"adminToken": []}],
            "parameters": [
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(LISTED_STATES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
                {"name": "before", "in": "query", "description": "only jobs with a smaller id (next page)",
                 "schema": {"type": "integer"}},
            ],
            "responses": {"200": {"description": "jobs", "content": {"application/json": {
                "schema": {"type": "array", "items": _JOB}}}}, **error_responses(400, 401, 403)},
        }
    },
    "/api/v1/jobs/{job_id}/retry": {
        "post": {
            "summary": "Run a dead (or cancelled, or waiting) job again now, with fresh attempts",
            "security": [{"adminToken": []}],
            "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"202": {"description": "queued again", "content": {"application/json": {"schema": _JOB}}},
                          **error_responses(401, 403, 404, 409)},
        }
    },
}

"""`POST /api/v1/scans` (CI upload) and `GET /api/v1/scans/{id}`."""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from forge_app.core.envelope import UploadError, parse_upload
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.limits import MAX_CONTAINERS, MAX_RESULTS, TooManyResults, quick_containers, quick_count
from forge_app.core.plans import published_fields
from forge_app.forges.registry import fetcher_for, serving_for_upload
from forge_app.forges.sources import can_fetch_sources
from forge_app.services.ingest import ingest_upload, reserve_upload, use_forge_diff, wants_source
from forge_app.web.auth import bearer, is_admin
from forge_app.web.body import parse_json, read_body, require_json
from forge_app.web.errors import ApiError, path_id
from forge_app.web.routes.openapi import error_responses
from storage import Repository, ScanRecord, Storage

log = logging.getLogger(__name__)
NEW_LISTED = 50


def scan_url(request: Request, scan_id: int) -> str:
    return f"{request.app.state.settings.public_url}/api/v1/scans/{scan_id}"


def scan_json(request: Request, scan: ScanRecord) -> dict[str, Any]:
    return {
        "id": scan.id,
        "url": scan_url(request, scan.id),
        "repository": scan.repository,
        "forge": scan.forge,
        "commit": scan.commit,
        "branch": scan.branch,
        "base_branch": scan.base_branch,
        "pull_request": scan.pull_request,
        "status": scan.status,
        "counts": {"new": scan.count_new, "fixed": scan.count_fixed, "unchanged": scan.count_unchanged},
        "counts_by_tool": scan.tool_counts,
        "tools": scan.tools,
        "notes": scan.notes,
        "blocking": scan.blocking,
        "baseline_scan_id": scan.base_scan_id,
        "errors": scan.errors,
        "created_at": scan.created_at,
        "completed_at": scan.completed_at,
        "error_detail": scan.error_detail,
        **published_fields(scan.meta),
    }


def _new_findings(storage: Storage, scan: ScanRecord) -> dict[str, Any]:
    """The first new findings, blocking ones first, for the uploader's summary."""
    new = storage.scan_findings(scan.id, ["new"]) if scan.count_new else []
    return {
        "new_findings": [
            {"rule_id": sf.finding.rule_id, "path": sf.finding.path, "line": sf.finding.start_line,
             "mode": sf.mode, "severity": sf.finding.severity, "message": sf.finding.message[:300]}
            for sf in sorted(new, key=lambda s: (s.mode != "block", s.finding.path, s.finding.start_line))[:NEW_LISTED]
        ],
        "new_findings_truncated": max(0, len(new) - NEW_LISTED),
    }


def _upload_repository(request: Request, storage: Storage) -> Repository:
    token = bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <upload token> (forge-app token create)",
                       headers={"WWW-Authenticate": "Bearer"})
    repo = storage.repository_for_token(token)
    if repo is None:
        raise ApiError(401, "unauthorized", "the upload token is not known to this server",
                       headers={"WWW-Authenticate": "Bearer"})
    return repo


def _no_source(_: str) -> None:
    return None


def _fingerprint_without_source(findings: list) -> list:
    """The server has no checkout: fingerprints come from the report's snippets, else the fallback
    (replaced from the forge's files when it can hand them out, see `create_scan`)."""
    return fingerprint_findings(findings, _no_source)


async def create_scan(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    storage: Storage = request.app.state.storage
    repo = _upload_repository(request, storage)
    require_json(request)
    body = await read_body(request, settings.max_body_bytes, settings.max_inflated_bytes)
    # Refused from the bytes, before parsing: parsing is where an upload's memory goes.
    if quick_count(body) > MAX_RESULTS:
        raise ApiError(413, "too_many_results", str(TooManyResults(quick_count(body))))
    if quick_containers(body) > MAX_CONTAINERS:
        raise ApiError(413, "too_complex", f"the upload holds more than {MAX_CONTAINERS:,} JSON objects and arrays; "
                                           "split it (one upload per report or per directory)")
    doc = parse_json(body, check=False)
    try:
        upload = await run_in_threadpool(parse_upload, doc, dict(request.query_params), _fingerprint_without_source)
    except UploadError as exc:
        raise ApiError(413 if exc.code == "too_many_results" else 400, exc.code, str(exc)) from None
    if upload.repository and upload.repository.lower() != repo.full_name.lower():
        raise ApiError(403, "wrong_repository",
                       f"this upload token belongs to {repo.full_name}, not to {upload.repository}")
    # Findings with neither a checkout fingerprint nor a snippet: their files are read from the
    # forge by a complete_scan job, and the scan answers `processing` until it is done.
    serving = await serving_for_upload(request.app.state.job_context, repo)
    upload = await use_forge_diff(request.app.state.job_context, repo, upload)
    if await can_fetch_sources(fetcher_for(request.app.state.job_context, repo)) and \
            await run_in_threadpool(wants_source, upload):
        ingested = await run_in_threadpool(reserve_upload, storage, repo, upload, serving)
    else:
        ingested = await run_in_threadpool(ingest_upload, storage, repo, upload, serving)
    # The scan was committed with synchronous=NORMAL (safe from a process crash); one fsync'ed
    # commit of the intake writer makes it safe from power loss too before the 201 says "stored".
    await storage.sync_intake()
    request.app.state.metrics.inc("forge_app_scans_total", "Scans uploaded", repository_forge=repo.forge)
    request.app.state.wake_worker()
    scan = storage.scan(ingested.scan_id)
    assert scan is not None
    doc = scan_json(request, scan)
    doc.update(_new_findings(storage, scan))
    if ingested.pending:
        log.info("scan %s stored for %s@%s: processing (source files are read from %s)", scan.id, repo.full_name,
                 scan.commit[:12], repo.forge)
    else:
        log.info("scan %s stored for %s@%s: %s new, %s fixed, %s unchanged", scan.id, repo.full_name,
                 scan.commit[:12], scan.count_new, scan.count_fixed, scan.count_unchanged)
    return JSONResponse(doc, status_code=201,
                        headers={"Location": scan_url(request, scan.id)})


async def get_scan(request: Request) -> JSONResponse:
    storage: Storage = request.app.state.storage
    scan_id = path_id(request, "scan_id", "scan")
    admin = is_admin(request)
    repo = None if admin else _upload_repository(request, storage)
    scan = storage.scan(scan_id)
    if scan is None:
        raise ApiError(404, "not_found", f"no scan {scan_id}")
    if repo is not None and scan.repository_id != repo.id:
        raise ApiError(403, "wrong_repository",
                       f"this upload token belongs to {repo.full_name}; scan {scan_id} is of another repository")
    doc = scan_json(request, scan)
    doc.update(_new_findings(storage, scan))
    if request.query_params.get("findings") in ("1", "true", "new", "all"):
        which = None if request.query_params["findings"] == "all" else ["new"]
        doc["findings"] = [
            {"status": sf.status, "mode": sf.mode, "base_line": sf.base_line, "first_seen": sf.first_seen,
             **sf.finding.to_dict()}
            for sf in storage.scan_findings(scan.id, which)
        ]
    return JSONResponse(doc)


routes = [
    Route("/api/v1/scans", create_scan, methods=["POST"]),
    Route("/api/v1/scans/{scan_id}", get_scan, methods=["GET"]),
]

_SCAN_SCHEMA = {
    "type": "object",
    "required": ["id", "url", "repository", "commit", "branch", "pull_request", "status", "counts", "blocking"],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string"},
        "repository": {"type": "string"},
        "forge": {"type": "string"},
        "commit": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
        "branch": {"type": "string", "nullable": True},
        "base_branch": {"type": "string", "nullable": True},
        "pull_request": {"type": "integer", "nullable": True},
        "status": {"type": "string", "enum": ["processing", "done", "failed"]},
        "counts": {
            "type": "object",
            "required": ["new", "fixed", "unchanged"],
            "properties": {k: {"type": "integer"} for k in ("new", "fixed", "unchanged")},
        },
        "blocking": {"type": "boolean"},
        "counts_by_tool": {"type": "object", "description": "tool (SARIF driver name, `semgrep` for Semgrep JSON) "
                           "-> {new, fixed, unchanged}: each tool is compared with its own baseline",
                           "additionalProperties": {"type": "object"}},
        "tools": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"},
                  "description": "what the uploader or the server had to guess "
                                 "(branch, base branch, root, fingerprints)"},
        "baseline_scan_id": {"type": "integer", "nullable": True},
        "errors": {"type": "array", "items": {"type": "string"}},
        "error_detail": {"type": "string", "nullable": True,
                         "description": "why a `failed` scan could not be completed"},
        "new_findings": {"type": "array", "items": {"type": "object"},
                         "description": "the first 50 new findings, blocking ones first"},
        "new_findings_truncated": {"type": "integer"},
        "published": {"type": "boolean", "description": "false when the marketplace plan of the "
                                                         "repository's account does not cover this scan"},
        "reason": {"type": "string", "nullable": True, "description": "why the scan was not published"},
    },
}

_UPLOAD_SCHEMA = {
    "type": "object",
    "description": "What `forge-app upload` sends. Alternatively `report` (or `reports`) holds raw Semgrep JSON or "
                   "SARIF 2.1.0 instead of `findings`; or the body is a raw report with the metadata in the query.",
    "required": ["commit"],
    "properties": {
        "repository": {"type": "string"},
        "commit": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"},
        "branch": {"type": "string"},
        "base_branch": {"type": "string"},
        "base_commit": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$",
                        "description": "the commit a PR/MR is compared against, when its scan was uploaded"},
        "renames": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "old path -> new path for files the change renamed"},
        "line_changes": {"type": "object", "description": "the complete diff base_commit -> commit: "
                         "{renames, added: [path], blocks: {head path: [[old_lo, old_hi, new_lo, new_hi]]}}; "
                         "a finding on untouched lines is the base finding at the mapped line"},
        "pull_request": {"type": "integer", "nullable": True},
        "findings": {"type": "array", "items": {"type": "object"}},
        "report": {"type": "object"},
        "reports": {"type": "array", "items": {"type": "object"}},
        "tools": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object"},
        "notes": {"type": "array", "items": {"type": "string"},
                  "description": "what the uploader had to guess, one sentence each (stored on the scan)"},
        "root": {"type": "string", "description": "with `report`/`reports`: the absolute path of the checkout "
                                                  "the scanner ran in, for absolute file URIs"},
    },
}

OPENAPI_SCHEMAS = {"Scan": _SCAN_SCHEMA, "ScanUpload": _UPLOAD_SCHEMA}

_META_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"},
     "description": f"{n} when the body is a raw report"}
    for n in ("repository", "commit", "branch", "base_branch", "pull_request")
] + [{"name": "root", "in": "query", "required": False, "schema": {"type": "string"},
      "description": "absolute path of the checkout the scanner ran in: absolute file URIs in a raw report "
                     "are made relative to it"}]

OPENAPI_PATHS = {
    "/api/v1/scans": {
        "post": {
            "summary": "Upload a scan (JSON, optionally Content-Encoding: gzip)",
            "security": [{"uploadToken": []}],
            "parameters": _META_PARAMS,
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScanUpload"}}}},
            "responses": {
                "201": {"description": "stored; `status` is `processing` while the server reads source files from "
                                       "the forge for findings that have neither a fingerprint from the checkout "
                                       "nor a code snippet (then poll GET /api/v1/scans/{id})",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Scan"}}}},
                **error_responses(400, 401, 403, 413, 415),
            },
        }
    },
    "/api/v1/scans/{scan_id}": {
        "get": {
            "summary": "A scan's status, counts and blocking verdict",
            "security": [{"uploadToken": []}, {"adminToken": []}],
            "parameters": [
                {"name": "scan_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                {"name": "findings", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["new", "all"]}, "description": "include findings"},
            ],
            "responses": {
                "200": {"description": "the scan",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Scan"}}}},
                **error_responses(401, 403, 404),
            },
        }
    },
}

"""The backend the unmodified `semgrep ci` CLI talks to (SEMGREP_APP_URL = this server, SEMGREP_APP_TOKEN =
an upload token): it serves the rules, takes the findings through the same pipeline as `forge-app upload`,
and answers `complete` with forge-app's verdict.

Status codes are chosen for what the CLI does with them: 401 makes it print its "Invalid API Key" message
and exit 13; other 4xx make it print our JSON error and fail (it retries 413/429/5xx for minutes, so bad
input never gets a 5xx). The protocol is described in docs/semgrep-ci.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from forge_app.core.envelope import UploadError, parse_upload
from forge_app.core.fingerprint import fingerprint_findings
from forge_app.core.plans import published_fields
from forge_app.core.semgrep_ci import block_override, check_results_body, cli_blocks, parse_scan_start, upload_document
from forge_app.forges.registry import fetcher_for, serving_for_upload, serving_now
from forge_app.forges.sources import can_fetch_sources
from forge_app.services.ingest import current_policy, ingest_upload, reserve_upload, use_forge_diff, wants_source
from forge_app.services.rules import catalog_for, rules_for_ci
from forge_app.web.auth import bearer
from forge_app.web.body import parse_json, read_body
from forge_app.web.errors import ApiError, path_id
from forge_app.web.routes.openapi import error_responses
from storage import Repository, Storage
from storage.semgrep_ci import CiRun

log = logging.getLogger(__name__)
COMPLETE_WAIT_SECONDS = 15.0  # then `success: false`, and the CLI asks again 5 s later
SMALL_BODY = 1024 * 1024


def _repository(request: Request) -> Repository:
    """The repository of the upload token; 401 (the CLI's "Invalid API Key", exit 13) otherwise."""
    token = bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", "send SEMGREP_APP_TOKEN=<forge-app upload token> (forge-app token create)",
                       headers={"WWW-Authenticate": "Bearer"})
    repo = request.app.state.storage.repository_for_token(token)
    if repo is None:
        raise ApiError(401, "unauthorized", "SEMGREP_APP_TOKEN is not an upload token known to this forge-app",
                       headers={"WWW-Authenticate": "Bearer"})
    return repo


def _run(request: Request, repo: Repository) -> CiRun:
    run_id = path_id(request, "run_id", "semgrep ci scan")  # ASCII digits within int64, else 404
    run = request.app.state.storage.ci_run(run_id)
    if run is None or run.repository_id != repo.id:
        raise ApiError(404, "not_found", f"no semgrep ci scan {run_id} for {repo.full_name}")
    return run


def _rules(request: Request, repo: Repository) -> list[dict[str, Any]]:
    """The rules for this repository: a Marketplace account not served, or served by a plan without
    blocking, gets block rules as comment rules, so the CLI does not fail what forge-app will not."""
    storage: Storage = request.app.state.storage
    serving = serving_now(request.app.state.settings, storage, repo)
    block_allowed = serving is None or (serving.served and serving.block_allowed)
    return rules_for_ci(catalog_for(request.app.state), storage, current_policy(storage), block_allowed=block_allowed)


async def start_scan(request: Request) -> JSONResponse:
    """`POST /api/cli/v2/scans`: idempotent on the CLI's unique_id (it re-POSTs when config polling times out)."""
    repo = _repository(request)
    storage: Storage = request.app.state.storage
    doc = parse_json(await read_body(request, SMALL_BODY, SMALL_BODY))
    try:
        start = parse_scan_start(doc)
    except UploadError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    if start.repository.lower() != repo.full_name.lower():
        raise ApiError(403, "wrong_repository",
                       f"this token belongs to {repo.full_name}, not to {start.repository} (SEMGREP_REPO_NAME)")
    if not await run_in_threadpool(_rules, request, repo):
        raise ApiError(422, "no_rules", "forge-app has no rules to serve: set FORGE_APP_RULES on the server or "
                                        "add a rule file with PUT /api/v1/rules/{name}")
    run = await run_in_threadpool(storage.start_ci_run, repo.id, start.unique_id, start.project_metadata,
                                  start.is_full_scan)
    log.info("semgrep ci scan %s started for %s@%s (%s)", run.id, repo.full_name, start.commit[:12],
             "full" if start.is_full_scan else "diff-aware")
    return JSONResponse({"info": {"id": run.id, "enabled_products": ["sast"], "deployment_id": 1,
                                  "deployment_name": "forge-app"}})


async def scan_config(request: Request) -> JSONResponse:
    """`GET /api/cli/v2/scans/{unique_id}/config`: the rules, with the rule board's actions, autofix on."""
    repo = _repository(request)
    storage: Storage = request.app.state.storage
    run = storage.ci_run_by_unique_id(repo.id, request.path_params["unique_id"])
    if run is None:
        raise ApiError(404, "not_found", "no semgrep ci scan was started with this id for this token")
    rules = await run_in_threadpool(_rules, request, repo)
    return JSONResponse({"status": "success", "config": {"rules": {"rules": rules}},
                         "engine_params": {"autofix": True}})


def _no_source(_: str) -> None:
    return None


def _fingerprint_without_source(findings: list) -> list:
    """As for uploads: snippets, else the fallback; the forge's files replace it where it can hand them out."""
    return fingerprint_findings(findings, _no_source)


async def scan_results(request: Request) -> JSONResponse:
    """`POST /api/agent/scans/{id}/results`: recorded once, like `POST /api/v1/scans` (a retried POST of
    the same run answers with the scan already stored)."""
    repo = _repository(request)
    storage: Storage = request.app.state.storage
    settings = request.app.state.settings
    run = _run(request, repo)
    if run.scan_id is not None:
        return JSONResponse({"errors": [], "task_id": str(run.scan_id)})
    body = parse_json(await read_body(request, settings.max_body_bytes, settings.max_inflated_bytes))
    try:
        check_results_body(body)
        doc = upload_document(run.project_metadata, body)
        upload = await run_in_threadpool(parse_upload, doc, {}, _fingerprint_without_source)
    except UploadError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    upload.meta["partial"] = not run.is_full_scan
    upload.meta["semgrep_ci_scan"] = run.id
    serving = await serving_for_upload(request.app.state.job_context, repo)
    upload = await use_forge_diff(request.app.state.job_context, repo, upload)
    fetcher = fetcher_for(request.app.state.job_context, repo)
    if await can_fetch_sources(fetcher) and await run_in_threadpool(wants_source, upload):
        ingested = await run_in_threadpool(reserve_upload, storage, repo, upload, serving)
    else:
        ingested = await run_in_threadpool(ingest_upload, storage, repo, upload, serving)
    cli_blocking = any(cli_blocks(f) for f in upload.findings)
    await run_in_threadpool(storage.attach_ci_results, run.id, ingested.scan_id, cli_blocking)
    await storage.sync_intake()  # durable like an upload's 201: power-loss safe before the answer
    request.app.state.metrics.inc("forge_app_scans_total", "Scans uploaded", repository_forge=repo.forge)
    request.app.state.wake_worker()
    log.info("semgrep ci scan %s: %d finding(s) stored as scan %s (%s)", run.id, len(upload.findings),
             ingested.scan_id, "processing" if ingested.pending else "done")
    # The CLI prints each of these as "Server returned following warning: ...".
    warnings = [{"message": f"forge-app will not publish this scan: {serving.reason}"}] \
        if serving is not None and not serving.served else []
    return JSONResponse({"errors": warnings, "task_id": str(ingested.scan_id)})


async def scan_complete(request: Request) -> JSONResponse:
    """`POST /api/agent/scans/{id}/complete`: `success: true` once the scan is stored and triaged (the CLI
    asks again after 5 s while it is not), with `app_block_override` when forge-app blocks on a new
    finding the CLI did not."""
    repo = _repository(request)
    storage: Storage = request.app.state.storage
    run = _run(request, repo)
    doc = parse_json(await read_body(request, SMALL_BODY, SMALL_BODY))
    doc = doc if isinstance(doc, dict) else {}
    exit_code = doc.get("exit_code") if type(doc.get("exit_code")) is int else None
    final = doc.get("final_attempt") is True
    if run.scan_id is None:  # no results were sent (a dry run): nothing to judge
        storage.finish_ci_run(run.id, "complete", exit_code)
        return JSONResponse({"success": True, "app_block_override": False, "app_block_reason": ""})
    deadline = time.monotonic() + COMPLETE_WAIT_SECONDS
    scan = storage.scan(run.scan_id)
    while scan is not None and scan.status == "processing" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        scan = storage.scan(run.scan_id)
    if scan is None or scan.status == "processing":
        if not final:
            return JSONResponse({"success": False})
        log.warning("semgrep ci scan %s: scan %s still processing at the CLI's last attempt", run.id, run.scan_id)
        return JSONResponse({"success": True, "app_block_override": False, "app_block_reason": ""})
    if scan.status == "failed":
        log.warning("semgrep ci scan %s: scan %s failed: %s", run.id, scan.id, scan.error_detail)
        storage.finish_ci_run(run.id, "complete", exit_code, scan.error_detail)
        return JSONResponse({"success": True, "app_block_override": False, "app_block_reason": ""})
    served = published_fields(scan.meta)["published"]  # an account the Marketplace does not serve is never blocked
    new_blocking = [sf.finding for sf in await run_in_threadpool(storage.scan_findings, scan.id, ["new"])
                    if sf.mode == "block"] if scan.blocking and served else []
    verdict = block_override(new_blocking)
    storage.finish_ci_run(run.id, "complete", exit_code)
    answer: dict[str, Any] = {"success": True, "app_block_override": verdict.override,
                              "app_block_reason": verdict.reason}
    if verdict.match_based_ids:
        answer["app_blocking_match_based_ids"] = verdict.match_based_ids
    return JSONResponse(answer)


async def scan_error(request: Request) -> JSONResponse:
    """`POST /api/agent/scans/{id}/error`: the CLI failed (its exit code); recorded, nothing published."""
    repo = _repository(request)
    storage: Storage = request.app.state.storage
    run = _run(request, repo)
    doc = parse_json(await read_body(request, SMALL_BODY, SMALL_BODY))
    doc = doc if isinstance(doc, dict) else {}
    exit_code = doc.get("exit_code") if type(doc.get("exit_code")) is int else None
    raw_stderr = doc.get("stderr")
    stderr = raw_stderr if isinstance(raw_stderr, str) else ""
    storage.finish_ci_run(run.id, "error", exit_code, stderr[:2000] or None)
    log.warning("semgrep ci scan %s of %s failed in CI with exit code %s", run.id, repo.full_name, exit_code)
    return JSONResponse({"recorded": True})


async def deployment(request: Request) -> JSONResponse:
    """`GET /api/agent/deployments/current`: how the CLI checks a token (`semgrep login`-style)."""
    repo = _repository(request)
    return JSONResponse({"deployment": {"id": 1, "name": "forge-app", "display_name": repo.full_name,
                                        "has_autofix": True}})


async def pro_engine(request: Request) -> JSONResponse:
    """The CLI asks for the proprietary engine unless run with --oss-only; 403 makes it say the
    deployment has no access to it."""
    _repository(request)
    raise ApiError(403, "pro_engine_unavailable", "forge-app serves Semgrep OSS only: run `semgrep ci --oss-only`")


async def findings_link(request: Request) -> RedirectResponse:
    """The CLI ends with "View results in Semgrep Cloud Platform: <SEMGREP_APP_URL>/orgs/<deployment>/findings?
    repo=...": that link opens the console's project list (sign-in first), not a 404."""
    return RedirectResponse("/projects", status_code=302)


routes = [
    Route("/orgs/{deployment}/findings", findings_link, methods=["GET"]),
    Route("/api/cli/v2/scans", start_scan, methods=["POST"]),
    Route("/api/cli/v2/scans/{unique_id}/config", scan_config, methods=["GET"]),
    Route("/api/agent/scans/{run_id}/results", scan_results, methods=["POST"]),
    Route("/api/agent/scans/{run_id}/complete", scan_complete, methods=["POST"]),
    Route("/api/agent/scans/{run_id}/error", scan_error, methods=["POST"]),
    Route("/api/agent/deployments/current", deployment, methods=["GET"]),
    Route("/api/agent/deployments/deepbinary/{platform}", pro_engine, methods=["GET"]),
]

_OBJ = {"type": "object"}
_JSON = lambda schema: {"content": {"application/json": {"schema": schema}}}  # noqa: E731
_AUTH: list[dict[str, list[str]]] = [{"uploadToken": []}]
_RUN_ID = [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer"}}]

OPENAPI_PATHS = {
    "/api/cli/v2/scans": {"post": {
        "summary": "semgrep ci: start a scan (SEMGREP_APP_TOKEN = an upload token of project_metadata.repository)",
        "security": _AUTH,
        "requestBody": {"required": True, **_JSON({"type": "object", "required": ["project_metadata", "scan_metadata"],
                                                   "properties": {"project_metadata": _OBJ, "scan_metadata": _OBJ,
                                                                  "project_config": _OBJ}})},
        "responses": {"200": {"description": "the scan's id",
                              **_JSON({"type": "object", "properties": {"info": _OBJ}})},
                      **error_responses(400, 401, 403, 413, 422)},
    }},
    "/api/cli/v2/scans/{unique_id}/config": {"get": {
        "summary": "semgrep ci: the rules to run (FORGE_APP_RULES and /api/v1/rules), actions from the rule board",
        "security": _AUTH,
        "parameters": [{"name": "unique_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "`status: success` with `config.rules.rules` and `engine_params`",
                              **_JSON(_OBJ)}, **error_responses(401, 404)},
    }},
    "/api/agent/scans/{run_id}/results": {"post": {
        "summary": "semgrep ci: the findings, stored and triaged like POST /api/v1/scans",
        "security": _AUTH, "parameters": _RUN_ID,
        "requestBody": {"required": True, **_JSON({"type": "object", "required": ["findings"],
                                                   "properties": {"findings": {"type": "array", "items": _OBJ}}})},
        "responses": {"200": {"description": "`{errors: [], task_id}`; task_id is the forge-app scan id",
                              **_JSON(_OBJ)}, **error_responses(400, 401, 404, 413)},
    }},
    "/api/agent/scans/{run_id}/complete": {"post": {
        "summary": "semgrep ci: done; answers success once the scan is triaged, app_block_override when a "
                   "forge-app policy blocks a new finding the CLI did not",
        "security": _AUTH, "parameters": _RUN_ID, "requestBody": {"required": True, **_JSON(_OBJ)},
        "responses": {"200": {"description": "`{success, app_block_override, app_block_reason}`", **_JSON(_OBJ)},
                      **error_responses(400, 401, 404)},
    }},
    "/api/agent/scans/{run_id}/error": {"post": {
        "summary": "semgrep ci: the CLI failed; its exit code is recorded",
        "security": _AUTH, "parameters": _RUN_ID, "requestBody": {"required": True, **_JSON(_OBJ)},
        "responses": {"200": {"description": "recorded", **_JSON(_OBJ)}, **error_responses(400, 401, 404)},
    }},
}

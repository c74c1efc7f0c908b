"""Projects: repositories with scans, a repository's scans and open findings, a scan's findings.

Every list is one bounded query (LIMIT/OFFSET with a COUNT), so a repository with
10,000 findings renders in a few milliseconds (bench/console.py measures it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.chart import open_findings_svg
from forge_app.console.links import ForgeWeb
from forge_app.console.web import PageError, int_param, page, queries, render, storage_of
from forge_app.core.models import SEVERITIES
from forge_app.forges.registry import FORGES
from storage.console import PRESENT, FindingFilter

FINDINGS_PER_PAGE = 50
SCANS_PER_PAGE = 20
STATUSES = ("new", "fixed", "unchanged")


def forge_web(request: Request, forge: str, full_name: str) -> ForgeWeb:
    settings = request.app.state.settings
    known = FORGES.get(forge)
    if known is None:
        return ForgeWeb(None, full_name, None)
    connection_base = None
    if known.connections is not None:
        connection = storage_of(request).connection_for(forge, full_name)
        connection_base = connection.base_url if connection else None
    return ForgeWeb(known.links, full_name, known.links.web_root(settings, connection_base))


def pager(request: Request, total: int, per_page: int, param: str = "page") -> dict[str, Any]:
    """Page numbers and links that keep the other query parameters."""
    raw = request.query_params.get(param, "1")
    current = int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1
    pages = max(1, -(-total // per_page))
    current = min(current, pages)

    def link(n: int) -> str:
        params = dict(request.query_params)
        params[param] = str(n)
        return f"{request.url.path}?{urlencode(params)}"

    return {"page": current, "pages": pages, "total": total, "offset": (current - 1) * per_page,
            "prev": link(current - 1) if current > 1 else None, "next": link(current + 1) if current < pages else None}


@page
async def projects(request: Request) -> Response:
    repos = queries(request).repositories_with_scans()
    return render(request, "projects.html", title="Projects", repos=repos)


def _repository(request: Request) -> Any:
    repo = storage_of(request).repository(int_param(request, "repository_id"))
    if repo is None:
        raise PageError(404, "Not found", "No repository with that id has been seen by this server.")
    return repo


@page
async def repository(request: Request) -> Response:
    repo = _repository(request)
    q = queries(request)
    web = forge_web(request, repo.forge, repo.full_name)
    scans_total = q.repository_scans(repo.id, 0, 0)[1]
    scan_pages = pager(request, scans_total, SCANS_PER_PAGE, "scans_page")
    scans, _ = q.repository_scans(repo.id, SCANS_PER_PAGE, scan_pages["offset"])
    head = q.head_scan(repo.id, repo.default_branch)
    flt = FindingFilter(rule=request.query_params.get("rule", "")[:512],
                        path=request.query_params.get("path", "")[:512],
                        severity=request.query_params.get("severity", "")[:20])
    findings: list[dict[str, Any]] = []
    rules: list[str] = []
    finding_pages = pager(request, 0, FINDINGS_PER_PAGE)
    chart = ""
    if head is not None:
        total = q.findings_page(head["id"], PRESENT, flt, 0, 0)[1]
        finding_pages = pager(request, total, FINDINGS_PER_PAGE)
        findings, _ = q.findings_page(head["id"], PRESENT, flt, FINDINGS_PER_PAGE,
                                      finding_pages["offset"])
        rules = q.finding_rules(head["id"], PRESENT)
        chart = open_findings_svg([(r["created_at"], int(r["open"])) for r in q.open_counts(repo.id, head["branch"])])
    return render(request, "repository.html", title=repo.full_name, repo=repo, web=web, scans=scans,
                  scan_pages=scan_pages, head=head, findings=findings, finding_pages=finding_pages, rules=rules,
                  flt=flt, severities=SEVERITIES, chart=chart)


@page
async def scan(request: Request) -> Response:
    scan_id = int_param(request, "scan_id")
    record = storage_of(request).scan(scan_id)
    if record is None:
        raise PageError(404, "Not found", f"There is no scan {scan_id} on this server.")
    q = queries(request)
    web = forge_web(request, record.forge, record.repository)
    sections = []
    for status in STATUSES:
        total = {"new": record.count_new, "fixed": record.count_fixed, "unchanged": record.count_unchanged}[status]
        pages = pager(request, total, FINDINGS_PER_PAGE, f"{status}_page")
        rows, _ = q.findings_page(record.id, (status,), FindingFilter(), FINDINGS_PER_PAGE, pages["offset"])
        sections.append({"status": status, "rows": rows, "pages": pages})
    repo = storage_of(request).find_repository(record.forge, record.repository)
    return render(request, "scan.html", title=f"Scan {record.id}", scan=record, web=web, sections=sections,
                  repo=repo, api_url=f"{request.app.state.settings.public_url}/api/v1/scans/{record.id}")



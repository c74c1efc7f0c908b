"""Benchmark: server-side render time of the console's pages with 10,000 open findings.

Builds a temporary database with one repository whose main-branch scan has N findings
(20 rules, 3 severities, 500 files) and a PR scan over it, signs in, and times each page
through the ASGI app in-process (what the server spends; no network, no browser). As a
baseline measured in the same run: `/healthz` (the cheapest route) and the JSON
`GET /api/v1/scans/{id}` of the same scan. Target: every page under 50 ms (median).

    .venv/bin/python bench/console.py [--findings 10000] [--runs 30]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from forge_app.config import Settings  # noqa: E402
from forge_app.core.models import Finding, Fingerprint  # noqa: E402
from forge_app.web.app import create_app  # noqa: E402
from storage import open_storage  # noqa: E402

ADMIN = "bench-admin-token-0123456789abcdef"
TARGET_MS = 50.0


def findings(n: int, shift: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        code = f"value_{i} = risky_call(arg_{i})"
        h = hashlib.sha256(f"{i}".encode()).hexdigest()
        out.append(Finding(
            rule_id=f"bench.rule.{i % 20}", path=f"src/module_{i % 500}/file.py", start_line=10 + i // 500 + shift,
            end_line=10 + i // 500 + shift, message=f"finding {i}: something risky here",
            severity=("error", "warning", "info")[i % 3], snippet=code,
            fingerprint=Fingerprint(value=h[:32], code=h[32:48]), tool="bench").to_dict())
    return out


def timed(client: TestClient, url: str, runs: int, **kw) -> tuple[float, float]:
    client.get(url, **kw)  # warm: templates compiled, caches filled
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        r = client.get(url, **kw)
        samples.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return statistics.median(samples), max(samples)


def index_cost(n: int, rounds: int = 3) -> None:
    """What the console's index (migration 0050) adds to an upload: the same n-finding upload into
    a database with the index and into one without it, alternating, medians."""
    times: dict[str, list[float]] = {"with index": [], "without (baseline)": []}
    for _ in range(rounds):
        for label in times:
            with tempfile.TemporaryDirectory() as tmp:
                settings = Settings(database=f"{tmp}/cost.db", secret_key="bench-secret-key-0123456789abcdef-0123",
                                    admin_token=ADMIN, public_url="http://testserver")
                storage = open_storage(settings.database)
                if label.startswith("without"):
                    storage.database.db.execute("DROP INDEX findings_console")
                token = storage.create_upload_token("github", "octo/bench")
                with TestClient(create_app(settings, storage, run_worker=False)) as client:
                    body = {"repository": "octo/bench", "commit": "a" * 40, "branch": "main", "findings": findings(n)}
                    started = time.perf_counter()
                    r = client.post("/api/v1/scans", headers={"Authorization": f"Bearer {token}"}, json=body)
                    times[label].append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 201, r.text[:300]
                storage.close()
    for label, samples in times.items():
        print(f"upload of {n} findings, {label:<20} {statistics.median(samples):>8.0f} ms median of {rounds}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--index-cost", action="store_true", help="also time uploads with and without the index")
    args = parser.parse_args()
    if args.index_cost:
        index_cost(args.findings)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database=f"{tmp}/bench.db", secret_key="bench-secret-key-0123456789abcdef-0123",
                            admin_token=ADMIN, public_url="http://testserver")
        storage = open_storage(settings.database)
        token = storage.create_upload_token("github", "octo/bench")
        app = create_app(settings, storage, run_worker=False)
        with TestClient(app) as client:
            auth = {"Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            base = client.post("/api/v1/scans", headers=auth, json={
                "repository": "octo/bench", "commit": "a" * 40, "branch": "main", "findings": findings(args.findings)})
            assert base.status_code == 201, base.text[:500]
            pr = client.post("/api/v1/scans", headers=auth, json={
                "repository": "octo/bench", "commit": "b" * 40, "branch": "feature", "base_branch": "main",
                "pull_request": 5, "findings": findings(args.findings - 100) + findings(150)[-50:]})
            assert pr.status_code == 201, pr.text[:500]
            print(f"setup: {args.findings} findings stored in {time.perf_counter() - started:.1f} s")
            page = client.get("/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            client.post("/", data={"csrf": csrf, "token": ADMIN}, follow_redirects=False)
            repo_id = storage.find_repository("github", "octo/bench").id
            base_id, pr_id = base.json()["id"], pr.json()["id"]
            admin = {"headers": {"Authorization": f"Bearer {ADMIN}"}}
            rows = [
                ("baseline: GET /healthz", "/healthz", {}),
                ("baseline: GET /api/v1/scans/{id} (JSON)", f"/api/v1/scans/{base_id}", admin),
                ("/projects", "/projects", {}),
                ("/projects/{id} (first page)", f"/projects/{repo_id}", {}),
                ("/projects/{id}?page=150", f"/projects/{repo_id}?page=150", {}),
                ("/projects/{id}?severity=warning", f"/projects/{repo_id}?severity=warning", {}),
                ("/projects/{id}?rule=…&path=…", f"/projects/{repo_id}?rule=bench.rule.7&path=module_4", {}),
                ("/scans/{id} (PR scan)", f"/scans/{pr_id}", {}),
                ("/scans/{id}?unchanged_page=100", f"/scans/{pr_id}?unchanged_page=100", {}),
                ("/rules", "/rules", {}),
                ("/settings/integrations", "/settings/integrations", {}),
            ]
            print(f"{'page':<44} {'median ms':>10} {'max ms':>8}  (target < {TARGET_MS:.0f} ms, {args.runs} runs)")
            worst = 0.0
            for label, url, kw in rows:
                median, peak = timed(client, url, args.runs, **kw)
                if not label.startswith("baseline"):
                    worst = max(worst, median)
                print(f"{label:<44} {median:>10.1f} {peak:>8.1f}")
            print(f"slowest console page: {worst:.1f} ms median -> {'OK' if worst < TARGET_MS else 'OVER TARGET'}")
        storage.close()
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())

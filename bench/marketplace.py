"""Benchmark: `marketplace-sync` of 10,000 accounts across 5 plans against a local fake GitHub.

The fake (tests/github/fake_github.py) validates every request against GitHub's vendored
Marketplace description and pages 100 accounts at a time. Printed beside the sync, in the
same run: the baseline of fetching the same pages with a bare HTTP loop (no parsing, no
database), so what the sync adds is visible. Target: the first sync under 30 s.

    .venv/bin/python bench/marketplace.py [--accounts 10000] [--plans 5]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forge_app.config import Settings  # noqa: E402
from forge_app.core.plans import parse_plans  # noqa: E402
from forge_app.forges.github.marketplace.sync import sync_accounts  # noqa: E402
from forge_app.forges.github.tokens import app_jwt  # noqa: E402
from storage import open_storage  # noqa: E402
from tests.github.fake_github import FakeGitHub, ServerThread  # noqa: E402


async def bare_fetch(fake: FakeGitHub) -> int:
    """The same GETs the sync makes, with nothing done to the answers."""
    headers = {"Authorization": f"Bearer {app_jwt(str(fake.app_id), fake.private_key)}",
               "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    pages = 0
    async with httpx.AsyncClient(timeout=30) as http:
        plans = (await http.get(f"{fake.url}/marketplace_listing/plans?per_page=100", headers=headers)).json()
        pages += 1
        for plan in plans:
            url: str | None = f"{fake.url}/marketplace_listing/plans/{plan['id']}/accounts?per_page=100"
            while url:
                response = await http.get(url, headers=headers)
                pages += 1
                m = re.search(r'<([^>]+)>;\s*rel="next"', response.headers.get("link", ""))
                url = m.group(1) if m else None
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--plans", type=int, default=5)
    args = parser.parse_args()

    fake = FakeGitHub()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    for p in range(1, args.plans + 1):
        fake.mp_plan(p, f"Plan {p}")
    for i in range(args.accounts):
        fake.mp_account(1 + i % args.plans, 1_000_000 + i, f"org-{i}")
    names = {f"Plan {p}": {"repositories": None} for p in range(1, args.plans + 1)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(database=f"{tmp}/bench.db", github_app_id=str(fake.app_id),
                                github_private_key=fake.private_key, github_api_url=fake.url,
                                marketplace_plans=parse_plans(__import__("json").dumps({"plans": names})))
            storage = open_storage(settings.database)
            t0 = time.perf_counter()
            pages = asyncio.run(bare_fetch(fake))
            baseline = time.perf_counter() - t0
            t0 = time.perf_counter()
            first = asyncio.run(sync_accounts(settings, storage))
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = asyncio.run(sync_accounts(settings, storage))
            again_s = time.perf_counter() - t0
            stored = len(storage.marketplace_accounts())
            storage.close()
    finally:
        server.stop()
    print(f"accounts listed: {args.accounts} across {args.plans} plans, {pages} pages of <= 100")
    print(f"baseline  bare HTTP fetch of the same pages:       {baseline:6.2f} s")
    print(f"sync      first run ({len(first.changes)} changes, {first.requests} requests): {first_s:6.2f} s")
    print(f"sync      second run ({len(again.changes)} changes):                  {again_s:6.2f} s")
    print(f"accounts stored: {stored}; target: first sync < 30 s -> {'OK' if first_s < 30 else 'MISSED'}")
    assert stored == args.accounts and first.accounts == args.accounts and not again.changes
    return 0 if first_s < 30 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a 20,000-finding SARIF upload through the real HTTP path.

Starts `forge-app serve` in its own process (so its memory is its own), uploads a
generated SARIF file as a raw report (the server parses, fingerprints, diffs against
the baseline and stores it), and prints the wall time of each upload and the server's
peak RSS (VmHWM). Target on a 2-core machine: under 3 s and under 400 MB.

    .venv/bin/python bench/upload.py [--findings 20000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sarif(n: int, files: int = 200, shift: int = 0) -> dict:
    """n results over `files` files; `shift` moves every finding down (a PR that inserted lines)."""
    rules = [{"id": f"bench.rule.{i}", "shortDescription": {"text": f"rule {i}"},
              "defaultConfiguration": {"level": "warning"},
              "helpUri": f"https://example.com/rules/{i}"} for i in range(20)]
    results = []
    for i in range(n):
        line = 10 + (i // files) * 7 + shift
        results.append({
            "ruleId": f"bench.rule.{i % 20}",
            "ruleIndex": i % 20,
            "level": "error" if i % 7 == 0 else "warning",
            "message": {"text": f"finding {i}: something risky here"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f"src/module_{i % files}/file.py"},
                "region": {"startLine": line, "endLine": line, "startColumn": 5, "endColumn": 30,
                           "snippet": {"text": f"    value_{i} = risky_call(arg_{i})\n"}},
            }}],
        })
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "bench", "rules": rules}}, "results": results}]}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create_token(env: dict[str, str], repo: str, *, init: bool = False) -> str:
    """An upload token from `forge-app token create`, as a user mints one (`init`: the first
    call creates the database, which the verb otherwise refuses to do)."""
    command = [sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", repo]
    done = subprocess.run(command + (["--init"] if init else []), env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    """`forge-app serve --no-worker` as its own process, returned once /healthz answers."""
    server = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "serve", "--port", str(port),
                               "--no-worker"], env=env, cwd=ROOT)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--findings", type=int, default=20_000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="forge-bench-"))
    port = free_port()
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp / "bench.db"), "FORGE_APP_LOG_LEVEL": "WARNING",
           "FORGE_APP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    token = create_token(env, "bench/repo", init=True)
    server = start_server(env, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        rss_idle = peak_rss_mb(server.pid)
        print(f"server idle peak RSS: {rss_idle:.0f} MB")
        runs = [("baseline (main)", {"commit": "a" * 40, "branch": "main", "report": sarif(args.findings)}),
                ("PR vs baseline, every finding moved 3 lines",
                 {"commit": "b" * 40, "branch": "feature", "base_branch": "main", "pull_request": 1,
                  "report": sarif(args.findings, shift=3)})]
        for label, doc in runs:
            body = gzip.compress(json.dumps(doc).encode())
            started = time.perf_counter()
            r = httpx.post(f"{base_url}/api/v1/scans", content=body, timeout=120,
                           headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                                    "Content-Type": "application/json"})
            elapsed = time.perf_counter() - started
            r.raise_for_status()
            counts = r.json()["counts"]
            print(f"{label}: {args.findings} findings, {len(body) / 1e6:.1f} MB gzip, "
                  f"{elapsed:.2f} s wall, counts {counts}, server peak RSS {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

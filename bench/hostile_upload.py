"""Benchmark: one repository's hostile upload must not starve another repository.

Starts `forge-app serve` in its own process, then:
1. baseline: a small upload (5 findings) of repository B alone, several times;
2. while repository A uploads a 300,000-result SARIF with every result at one location
   (about 0.2 MB gzip, ~100 MB inflated), B keeps uploading small scans every 0.3 s;
3. the same with a 49,000-result upload (just under the per-upload cap: accepted);
4. a 200 MB (inflated) upload of 50 million empty objects: refused before it is parsed.

Prints how long A's upload took to be answered (and with what), B's upload latency
beside its baseline from the same run, and the server's peak RSS (VmHWM).
Target (issue #11): A answered within 30 s, every B upload 201 within 2 s, server under 1 GB.

    .venv/bin/python bench/hostile_upload.py [--results 300000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upload import create_token, free_port, peak_rss_mb, start_server


def one_place_sarif(n: int) -> bytes:
    result = {"ruleId": "hostile.rule", "level": "error", "message": {"text": "same"},
              "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"},
                                                  "region": {"startLine": 1, "snippet": {"text": "x = 1\n"}}}}]}
    doc = {"commit": "c" * 40, "branch": "main", "report": {
        "version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep"}}, "results": [result] * n}]}}
    return gzip.compress(json.dumps(doc).encode(), compresslevel=9)


def small_upload(i: int) -> bytes:
    findings = [{"rule_id": f"r{k}", "path": f"src/f{k}.py", "start_line": 3, "end_line": 3, "message": "m",
                 "severity": "warning", "snippet": f"call_{k}()"} for k in range(5)]
    return json.dumps({"commit": f"{i:040x}", "branch": "main", "findings": findings}).encode()


def post(base: str, token: str, body: bytes, gz: bool = False) -> tuple[int, float, str]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    started = time.perf_counter()
    r = httpx.post(f"{base}/api/v1/scans", content=body, headers=headers, timeout=300)
    return r.status_code, time.perf_counter() - started, r.json().get("error", "") if r.status_code >= 400 else ""


def scenario(base: str, tokens: dict[str, str], label: str, n: int, pid: int, counter: list[int]) -> None:
    body = one_place_sarif(n)
    answer: dict[str, object] = {}

    def hostile() -> None:
        answer["result"] = post(base, tokens["a"], body, gz=True)

    thread = threading.Thread(target=hostile)
    thread.start()
    latencies, statuses = [], []
    while thread.is_alive():
        counter[0] += 1
        status, elapsed, _ = post(base, tokens["b"], small_upload(counter[0]))
        latencies.append(elapsed)
        statuses.append(status)
        time.sleep(0.3)
    thread.join()
    status, elapsed, error = answer["result"]  # type: ignore[misc]
    print(f"{label}: {n:,} results at one location, {len(body) / 1e6:.2f} MB gzip -> {status} {error} "
          f"in {elapsed:.1f} s; meanwhile {len(latencies)} small uploads of another repository: "
          f"statuses {sorted(set(statuses))}, max {max(latencies or [0]):.2f} s, "
          f"median {statistics.median(latencies or [0]):.2f} s; server peak RSS {peak_rss_mb(pid):.0f} MB")


def bomb(base: str, tokens: dict[str, str], pid: int) -> None:
    raw = b'{"commit": "' + b"d" * 40 + b'", "meta": {"x": [' + b"{}," * 66_000_000 + b'{}]}, "findings": []}'
    body = gzip.compress(raw, compresslevel=6)
    status, elapsed, error = post(base, tokens["a"], body, gz=True)
    print(f"object bomb: {len(raw) / 1e6:.0f} MB inflated, {len(body) / 1e6:.2f} MB gzip -> {status} {error} in "
          f"{elapsed:.1f} s; server peak RSS {peak_rss_mb(pid):.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=int, default=300_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="forge-hostile-"))
    port = free_port()
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp / "bench.db"), "FORGE_APP_LOG_LEVEL": "WARNING",
           "FORGE_APP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    tokens = {key: create_token(env, repo, init=key == "a")  # the first creates the database
              for key, repo in (("a", "hostile/a"), ("b", "victim/b"))}
    server = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        counter = [0]
        alone = []
        for _ in range(5):
            counter[0] += 1
            alone.append(post(base, tokens["b"], small_upload(counter[0]))[1])
        print(f"baseline: a small upload alone: median {statistics.median(alone):.3f} s, max {max(alone):.3f} s; "
              f"server peak RSS {peak_rss_mb(server.pid):.0f} MB")
        scenario(base, tokens, "hostile upload", args.results, server.pid, counter)
        scenario(base, tokens, "largest accepted upload", 49_000, server.pid, counter)
        bomb(base, tokens, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

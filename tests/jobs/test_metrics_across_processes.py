"""`serve` and `forge-app worker` as separate processes share their Prometheus numbers through
PROMETHEUS_MULTIPROC_DIR: a job run in the worker process is counted in `/metrics` scraped from
the serve process (issue #10, item 6)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from storage import open_storage
from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.github.gh_helpers import WEBHOOK_SECRET, pull_request_event, sha, signature
from tests.support.cluster import Cluster, base_env
from tests.web.scan_helpers import finding, upload


def _value(metrics: str, name: str, **labels: str) -> float:
    """The sample's value, 0 when it is not there (label order as prometheus_client writes it)."""
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_job_run_by_a_worker_process_is_counted_in_the_serve_process_metrics(tmp_path: Path) -> None:
    database, shared = tmp_path / "forge-app.db", tmp_path / "prometheus"
    shared.mkdir()
    storage = open_storage(str(database))
    token = storage.create_upload_token("github", "octo/demo")
    storage.close()
    env = base_env({"FORGE_APP_DATABASE": str(database), "FORGE_APP_SECRET_KEY": SECRET_KEY,
                    "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN, "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "PROMETHEUS_MULTIPROC_DIR": str(shared)})
    logs = tmp_path / "logs"
    logs.mkdir()
    with Cluster(env, logs) as cluster:
        cluster.start(serves=1, workers=1)  # serve --no-worker: only the worker process runs jobs
        [serve], [worker] = cluster.serves, cluster.workers
        r = httpx.post(f"{serve.url}/api/v1/scans", json=upload([finding()]),
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 201, r.text
        body = json.dumps(pull_request_event("opened", sha("metrics"), number=5)).encode()
        r = httpx.post(f"{serve.url}/webhooks/github", content=body, timeout=30, headers={
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "metrics-1", "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(body)})
        assert r.status_code == 202, r.text

        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            text = httpx.get(f"{serve.url}/metrics", timeout=10).text
            if (_value(text, "forge_app_job_runs_total", kind="notify_scan", outcome="done")
                    and _value(text, "forge_app_job_runs_total", kind="github_event", outcome="done")):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the worker's runs never reached /metrics:\n{text}\n{worker.tail()}")
        # Counted once each, by the worker process (serve runs no jobs), scraped from serve.
        assert _value(text, "forge_app_job_runs_total", kind="notify_scan", outcome="done") == 1
        assert _value(text, "forge_app_job_runs_total", kind="github_event", outcome="done") == 1
        # serve's own numbers are there too, and the job gauge is read from the database.
        assert _value(text, "forge_app_webhook_deliveries_total", forge="github", outcome="accepted") == 1
        assert re.search(r'^forge_app_jobs\{state="queued"\} 0\.0$', text, re.M), text
        assert any(p.name.startswith("counter_") for p in shared.iterdir())

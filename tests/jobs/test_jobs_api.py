"""`GET /api/v1/jobs` and `POST /api/v1/jobs/{id}/retry`: what an operator sees and can do."""

from __future__ import annotations


def _dead_job(storage, key: str = "d") -> int:
    job_id = storage.enqueue_job("publish_scan", {"scan_id": 5}, key=key, group="repo:1")
    storage.claim_job("w1")
    storage.fail_job(job_id, "GiveUp: 404 from the forge")
    return job_id


def test_dead_jobs_are_listed_with_their_error_and_can_be_retried(client, storage, admin_headers):
    job_id = _dead_job(storage)
    listed = client.get("/api/v1/jobs?state=dead", headers=admin_headers)
    assert listed.status_code == 200
    [job] = listed.json()
    assert job["id"] == job_id and job["kind"] == "publish_scan" and job["group"] == "repo:1"
    assert job["state"] == "dead" and job["attempts"] == 1 and "404" in job["last_error"]
    assert job["created_at"] and job["updated_at"]

    retried = client.post(f"/api/v1/jobs/{job_id}/retry", headers=admin_headers)
    assert retried.status_code == 202 and retried.json()["state"] == "queued" and retried.json()["attempts"] == 0
    assert client.get("/api/v1/jobs?state=dead", headers=admin_headers).json() == []
    assert [j["id"] for j in client.get("/api/v1/jobs?state=queued", headers=admin_headers).json()] == [job_id]
    storage.claim_job("w2")
    running = client.get("/api/v1/jobs?state=running", headers=admin_headers).json()
    assert running[0]["locked_by"] == "w2" and running[0]["lease_until"]
    again = client.post(f"/api/v1/jobs/{job_id}/retry", headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"] == "job_not_retryable"


def test_bad_requests_get_clear_json_errors(client, storage, admin_headers):
    _dead_job(storage)
    assert client.get("/api/v1/jobs?state=dead").status_code == 401
    assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code in (401, 403)
    bad = client.get("/api/v1/jobs?state=exploded", headers=admin_headers)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_state"
    assert client.get("/api/v1/jobs?state=dead&limit=0", headers=admin_headers).status_code == 400
    assert client.get("/api/v1/jobs?state=dead&limit=x", headers=admin_headers).json()["error"] == "invalid_parameter"
    assert client.post("/api/v1/jobs/999/retry", headers=admin_headers).status_code == 404
    assert client.post("/api/v1/jobs/abc/retry", headers=admin_headers).status_code == 404
    assert client.post("/api/v1/jobs/1/retry").status_code == 401


def test_pages_with_before(client, storage, admin_headers):
    ids = [_dead_job(storage, key=f"k{i}") for i in range(5)]
    first = client.get("/api/v1/jobs?state=dead&limit=2", headers=admin_headers).json()
    assert [j["id"] for j in first] == ids[::-1][:2]
    rest = client.get(f"/api/v1/jobs?state=dead&before={first[-1]['id']}", headers=admin_headers).json()
    assert [j["id"] for j in rest] == ids[::-1][2:]


def test_the_jobs_routes_are_in_the_openapi_description(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/jobs" in spec["paths"] and "/api/v1/jobs/{job_id}/retry" in spec["paths"]
    assert "Job" in spec["components"]["schemas"]


def test_metrics_use_the_contract_names(client, storage):
    _dead_job(storage)
    text = client.get("/metrics").text
    assert 'forge_app_jobs{state="dead"} 1.0' in text and 'forge_app_jobs{state="queued"} 0.0' in text
    assert "forge_app_job_runs_total" in text or "# HELP forge_app_job_runs" in text
    assert "forge_app_http_request_duration_seconds" in text

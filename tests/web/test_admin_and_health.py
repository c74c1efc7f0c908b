"""Health, metrics, OpenAPI and the policy board."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_metrics_are_prometheus_text(client, upload_token):
    from tests.web.scan_helpers import finding, upload

    client.post("/api/v1/scans", json=upload([finding()]), headers={"Authorization": f"Bearer {upload_token}"})
    text = client.get("/metrics").text
    assert "# TYPE forge_app_scans_total counter" in text
    assert 'forge_app_scans_total{repository_forge="github"} 1' in text
    assert "forge_app_jobs_queued" in text


def test_openapi_describes_the_api_routes_and_is_valid(client):
    spec = client.get("/openapi.json").json()
    validate(spec)
    for path in ("/api/v1/scans", "/api/v1/scans/{scan_id}", "/api/v1/policies", "/api/v1/connections"):
        assert path in spec["paths"], path


def test_policies_round_trip(client, admin_headers):
    assert client.get("/api/v1/policies", headers=admin_headers).json() == {"default": "comment", "rules": {}}
    doc = {"default": "monitor", "rules": {"python.flask.*": "block", "exact.rule": "comment"}}
    assert client.put("/api/v1/policies", json=doc, headers=admin_headers).json() == doc
    assert client.get("/api/v1/policies", headers=admin_headers).json() == doc


def test_bad_policies_get_a_clear_400(client, admin_headers):
    r = client.put("/api/v1/policies", json={"default": "shout"}, headers=admin_headers)
    assert r.status_code == 400 and "default" in r.json()["detail"]
    r = client.put("/api/v1/policies", json={"rules": {"x": "nope"}}, headers=admin_headers)
    assert r.status_code == 400 and "'x'" in r.json()["detail"]


def test_admin_routes_need_the_admin_token(client):
    r = client.get("/api/v1/policies")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = client.get("/api/v1/policies", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_admin_api_is_closed_without_an_admin_token(settings, storage):
    from dataclasses import replace

    from starlette.testclient import TestClient

    from forge_app.web.app import create_app

    with TestClient(create_app(replace(settings, admin_token=None), storage, run_worker=False)) as c:
        r = c.get("/api/v1/policies", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and "FORGE_APP_ADMIN_TOKEN" in r.json()["detail"]


def test_unknown_route_and_method_are_json_errors(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.delete("/api/v1/scans")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_an_upload_token_on_an_admin_route_is_403(client, upload_token):
    r = client.get("/api/v1/policies", headers={"Authorization": f"Bearer {upload_token}"})
    assert r.status_code == 403 and "upload token" in r.json()["detail"]


def test_a_trailing_slash_gets_a_json_404_not_a_bare_redirect(client, admin_headers):
    r = client.get("/api/v1/policies/", headers=admin_headers, follow_redirects=False)
    assert r.status_code == 404 and r.json()["error"] == "not_found"

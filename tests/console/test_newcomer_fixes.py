"""The newcomer's first-run papercuts: PATCH merges the rule board, /openapi.json covers every
machine route, `serve` says what to do next."""

from __future__ import annotations

from openapi_spec_validator import validate

from forge_app.cli.serve import first_steps


def test_patch_policies_merges_and_put_replaces(client, admin_headers):
    put = {"default": "comment", "rules": {"a.rule": "block", "b.*": "monitor"}}
    assert client.put("/api/v1/policies", json=put, headers=admin_headers).status_code == 200
    r = client.patch("/api/v1/policies", json={"default": "block"}, headers=admin_headers)
    assert r.status_code == 200 and r.json() == {"default": "block", "rules": put["rules"]}
    r = client.patch("/api/v1/policies", json={"rules": {"c.rule": "comment", "b.*": None}}, headers=admin_headers)
    assert r.json() == {"default": "block", "rules": {"a.rule": "block", "c.rule": "comment"}}
    assert client.get("/api/v1/policies", headers=admin_headers).json() == r.json()
    # PUT still replaces the whole board
    r = client.put("/api/v1/policies", json={"default": "block"}, headers=admin_headers)
    assert r.json() == {"default": "block", "rules": {}}


def test_patch_policies_bad_input_is_a_clear_400(client, admin_headers):
    for body, words in (([1], "JSON object"), ({"rules": {"x": "shout"}}, "'x'"), ({"nope": 1}, "unknown"),
                        ({"rules": "all"}, "rules must be an object"), ({"default": "loud"}, "default")):
        r = client.patch("/api/v1/policies", json=body, headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_policy" and words in r.json()["detail"], body
    r = client.patch("/api/v1/policies", content=b"{not json", headers={**admin_headers,
                                                                        "Content-Type": "application/json"})
    assert r.status_code == 400
    assert client.patch("/api/v1/policies", json={"default": "block"}).status_code == 401


def test_openapi_covers_webhooks_health_and_patch(client):
    spec = client.get("/openapi.json").json()
    validate(spec)
    for path in ("/webhooks/github", "/webhooks/gitlab", "/webhooks/bitbucket", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert "patch" in spec["paths"]["/api/v1/policies"]
    assert "replace" in spec["paths"]["/api/v1/policies"]["put"]["summary"].lower()


def test_start_up_names_the_console_and_the_next_step(settings):
    lines = first_steps(settings)
    assert lines[0] == "console: open http://testserver/ and sign in with FORGE_APP_ADMIN_TOKEN"
    assert "forge-app token create --repo OWNER/NAME" in lines[1] and "forge-app upload" in lines[1]
    from dataclasses import replace

    assert "is closed until FORGE_APP_ADMIN_TOKEN is set" in first_steps(replace(settings, admin_token=None))[0]


MACHINE_PREFIXES = ("/api/", "/webhooks/", "/slack/events", "/slack/commands", "/slack/interactions")
HEALTH = ("/healthz", "/readyz", "/metrics", "/openapi.json")


def test_openapi_describes_every_machine_route(app, client):
    """Routes CI, forges, Slack and monitoring call; pages for people (the console, /github/*) are not API."""
    from starlette.routing import Route

    spec = client.get("/openapi.json").json()["paths"]
    missing = []
    for route in app.routes:
        if not isinstance(route, Route) or not (route.path.startswith(MACHINE_PREFIXES) or route.path in HEALTH):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if method.lower() not in spec.get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert missing == []

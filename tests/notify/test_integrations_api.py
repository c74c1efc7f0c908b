"""The integrations admin API: CRUD, write-only secrets, clear 400s, test button, deliveries."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.notify.helpers import Receiver, Reply, make_finding, run_jobs, scan_body, upload, verify_standard_webhook

API = "/api/v1/integrations"


def create(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(API, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_admin_token_required(client: Any) -> None:
    assert client.get(API).status_code == 401
    r = client.post(API, json={"type": "webhook", "url": "http://x"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_webhook_crud_and_write_only_secret(client: Any, admin_headers: dict[str, str]) -> None:
    made = create(client, admin_headers, type="webhook", url="https://hooks.example.com/in", name="SIEM", secret=True)
    assert made["secret"].startswith("whsec_"), "a generated secret is returned once"
    assert len(base64.b64decode(made["secret"][len("whsec_"):])) == 32
    assert made["has_secret"] is True and made["enabled"] is True
    assert made["events"] == ["findings", "scan"]
    assert made["filters"] == {"repositories": [], "policies": ["monitor", "comment", "block"]}
    got = client.get(f"{API}/{made['id']}", headers=admin_headers)
    assert got.status_code == 200
    assert "secret" not in got.json() and made["secret"] not in got.text
    assert got.json()["has_secret"] is True
    listed = client.get(API, headers=admin_headers).json()
    assert [i["id"] for i in listed] == [made["id"]] and made["secret"] not in str(listed)

    patched = client.patch(f"{API}/{made['id']}", headers=admin_headers,
                           json={"name": "SIEM 2", "enabled": False, "filters": {"policies": ["block"]},
                                 "events": ["scan"]})
    assert patched.status_code == 200, patched.text
    doc = patched.json()
    assert doc["name"] == "SIEM 2" and doc["enabled"] is False and doc["events"] == ["scan"]
    assert doc["filters"] == {"repositories": [], "policies": ["block"]}
    assert "secret" not in doc and doc["has_secret"] is True

    rotated = client.patch(f"{API}/{made['id']}", headers=admin_headers, json={"secret": True}).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    unsigned = client.patch(f"{API}/{made['id']}", headers=admin_headers, json={"secret": None}).json()
    assert unsigned["has_secret"] is False and "secret" not in unsigned

    assert client.delete(f"{API}/{made['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/{made['id']}", headers=admin_headers).status_code == 404
    assert client.delete(f"{API}/{made['id']}", headers=admin_headers).status_code == 404


def test_own_secret_is_kept_and_not_echoed(client: Any, admin_headers: dict[str, str]) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    made = create(client, admin_headers, type="webhook", url="https://h.example.com/", secret=secret)
    assert "secret" not in made and made["has_secret"] is True


def test_unsigned_webhook(client: Any, admin_headers: dict[str, str]) -> None:
    made = create(client, admin_headers, type="webhook", url="https://h.example.com/", secret=None)
    assert made["has_secret"] is False and "secret" not in made


def test_signing_is_opt_in(client: Any, admin_headers: dict[str, str]) -> None:
    """No `secret` on POST: an unsigned webhook (the contract signs only "when the integration has a secret")."""
    with Receiver() as receiver:
        made = create(client, admin_headers, type="webhook", url=receiver.url)
        assert made["has_secret"] is False and "secret" not in made and "warnings" not in made
        assert client.get(f"{API}/{made['id']}", headers=admin_headers).json()["has_secret"] is False
        assert client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()["ok"] is True
        unsigned = receiver.requests[-1]
        assert "webhook-signature" not in unsigned.headers
        assert unsigned.headers["webhook-id"].startswith("msg_") and unsigned.headers["webhook-timestamp"].isdigit()

        # opting in later: PATCH "secret": true generates one and returns it once
        signed = client.patch(f"{API}/{made['id']}", json={"secret": True}, headers=admin_headers).json()
        assert signed["has_secret"] is True and signed["secret"].startswith("whsec_")
        assert "secret" not in client.get(f"{API}/{made['id']}", headers=admin_headers).json()
        assert client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()["ok"] is True
        assert verify_standard_webhook(signed["secret"], receiver.requests[-1].headers, receiver.requests[-1].body)

        # and back: PATCH "secret": null removes it
        cleared = client.patch(f"{API}/{made['id']}", json={"secret": None}, headers=admin_headers).json()
        assert cleared["has_secret"] is False and "secret" not in cleared
        assert client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()["ok"] is True
        assert "webhook-signature" not in receiver.requests[-1].headers

        # a PATCH that does not mention the secret keeps it
        own = "whsec_" + base64.b64encode(bytes(range(32))).decode()
        client.patch(f"{API}/{made['id']}", json={"secret": own}, headers=admin_headers)
        kept = client.patch(f"{API}/{made['id']}", json={"name": "renamed"}, headers=admin_headers).json()
        assert kept["has_secret"] is True and "secret" not in kept
        client.post(f"{API}/{made['id']}/test", headers=admin_headers)
        assert verify_standard_webhook(own, receiver.requests[-1].headers, receiver.requests[-1].body)


def test_secret_key_needed_only_when_a_secret_is_asked_for(client_with: Any, admin_headers: dict[str, str]) -> None:
    client = client_with(secret_key=None)
    with Receiver() as receiver:
        made = client.post(API, json={"type": "webhook", "url": receiver.url}, headers=admin_headers)
        assert made.status_code == 201, "an unsigned webhook needs no FORGE_APP_SECRET_KEY"
        hook_id = made.json()["id"]
        assert client.post(f"{API}/{hook_id}/test", headers=admin_headers).json()["ok"] is True
        for body in ({"type": "webhook", "url": receiver.url, "secret": True},
                     {"type": "webhook", "url": receiver.url, "secret": "whsec_" + "A" * 44}):
            r = client.post(API, json=body, headers=admin_headers)
            assert r.status_code == 400 and r.json()["error"] == "secret_key_missing", r.text
            assert "FORGE_APP_SECRET_KEY" in r.json()["detail"] and "unsigned" in r.json()["detail"]
        r = client.patch(f"{API}/{hook_id}", json={"secret": True}, headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "secret_key_missing"
        assert client.patch(f"{API}/{hook_id}", json={"secret": None}, headers=admin_headers).status_code == 200
    assert len(client.get(API, headers=admin_headers).json()) == 1


def test_stored_secret_without_its_key_fails_clearly(client: Any, client_with: Any, admin_headers: dict[str, str],
                                                     upload_token: str, storage: Any) -> None:
    """A secret stored under one FORGE_APP_SECRET_KEY, read by a server without it: not sent, not retried."""
    with Receiver() as receiver:
        made = create(client, admin_headers, type="webhook", url=receiver.url, secret=True, events=["findings"])
        keyless = client_with(secret_key=None)
        result = keyless.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
        assert result["ok"] is False and "FORGE_APP_SECRET_KEY" in result["error"]
        assert '"secret": true' in result["error"]
        upload(keyless, upload_token, scan_body([make_finding("a")], commit="a" * 40, branch="main"))
        run_jobs(keyless.app)
        assert receiver.requests == []
    findings = [d for d in client.get(f"{API}/{made['id']}/deliveries", headers=admin_headers).json()
                if d["kind"] == "findings"]
    assert [(d["status"], d["attempts"]) for d in findings] == [("failed", 1)]
    assert "FORGE_APP_SECRET_KEY" in findings[0]["error"]
    assert storage.jobs(kind="deliver_notification", status="queued") == []


def test_slack_and_email_shapes(client_with: Any, admin_headers: dict[str, str]) -> None:
    client = client_with(smtp_url="smtp://127.0.0.1:2525", email_from="forge-app@example.com")
    slack = create(client, admin_headers, type="slack", url="https://hooks.slack.com/services/T/B/x")
    assert slack["url"].startswith("https://hooks.slack.com") and "has_secret" not in slack and "secret" not in slack
    mail = create(client, admin_headers, type="email", addresses=["a@example.com", "b@example.com"],
                  filters={"repositories": ["octo/*"]})
    assert mail["addresses"] == ["a@example.com", "b@example.com"] and "url" not in mail
    assert mail["filters"]["repositories"] == ["octo/*"]


def test_email_is_saved_without_smtp_and_fails_clearly(client: Any, app: Any, storage: Any,
                                                       admin_headers: dict[str, str], upload_token: str) -> None:
    """No SMTP settings: the integration is saved with a warning; sending fails at once, naming the variables."""
    r = client.post(API, json={"type": "email", "addresses": ["a@example.com"]}, headers=admin_headers)
    assert r.status_code == 201, r.text
    made = r.json()
    [warning] = made["warnings"]
    assert "FORGE_APP_SMTP_URL" in warning and "FORGE_APP_EMAIL_FROM" in warning
    assert "warnings" not in client.get(f"{API}/{made['id']}", headers=admin_headers).json()

    result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and result["status_code"] is None
    assert "FORGE_APP_SMTP_URL" in result["error"] and "FORGE_APP_EMAIL_FROM" in result["error"]

    upload(client, upload_token, scan_body([make_finding("a")], commit="a" * 40, branch="main"))
    run_jobs(app)
    [mail] = [d for d in client.get(f"{API}/{made['id']}/deliveries", headers=admin_headers).json()
              if d["kind"] == "email"]
    assert (mail["status"], mail["attempts"]) == ("failed", 1), "a missing config is not retried"
    assert "FORGE_APP_SMTP_URL" in mail["error"] and "FORGE_APP_EMAIL_FROM" in mail["error"]
    assert "gave up" not in mail["error"]
    assert storage.jobs(kind="deliver_notification", status="queued") == []


def test_email_half_configured_names_what_is_missing(client_with: Any, admin_headers: dict[str, str]) -> None:
    client = client_with(smtp_url="smtp://127.0.0.1:2525", email_from=None)
    made = client.post(API, json={"type": "email", "addresses": ["a@example.com"]}, headers=admin_headers).json()
    assert "FORGE_APP_EMAIL_FROM is not set" in made["warnings"][0]
    result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and "FORGE_APP_EMAIL_FROM is not set" in result["error"]
    # once configured, PATCH answers carry no warning
    configured = client_with(smtp_url="smtp://127.0.0.1:2525", email_from="forge-app@example.com")
    patched = configured.patch(f"{API}/{made['id']}", json={"name": "team"}, headers=admin_headers).json()
    assert "warnings" not in patched


BAD_FIELDS = [
    ({"type": "pager"}, "invalid_integration", "type must be one of"),
    ({"type": "webhook"}, "invalid_integration", "url is required"),
    ({"type": "webhook", "url": "ftp://x.example.com/"}, "invalid_url", "only http and https"),
    ({"type": "webhook", "url": "https:///nohost"}, "invalid_url", "no host"),
    ({"type": "webhook", "url": "https://h.example.com", "events": ["push"]}, "invalid_integration", "unknown event"),
    ({"type": "webhook", "url": "https://h.example.com", "events": []}, "invalid_integration", "events must be"),
    ({"type": "webhook", "url": "https://h.example.com", "filters": {"policies": ["loud"]}},
     "invalid_integration", "unknown policy mode"),
    ({"type": "webhook", "url": "https://h.example.com", "filters": {"policies": []}},
     "invalid_integration", "one or more"),
    ({"type": "webhook", "url": "https://h.example.com", "filters": {"repositories": "octo/demo"}},
     "invalid_integration", "filters.repositories"),
    ({"type": "webhook", "url": "https://h.example.com", "filters": {"branches": []}},
     "invalid_integration", "unknown filter"),
    ({"type": "webhook", "url": "https://h.example.com", "secret": "hunter2hunter2"}, "invalid_secret", "whsec_"),
    ({"type": "webhook", "url": "https://h.example.com", "secret": 5}, "invalid_secret", "secret must be"),
    ({"type": "webhook", "url": "https://h.example.com", "enabled": "yes"}, "invalid_integration", "enabled"),
    ({"type": "webhook", "url": "https://h.example.com", "colour": "red"}, "invalid_integration", "unknown field"),
    ({"type": "slack", "url": "https://h.example.com", "secret": True}, "invalid_integration", "unknown field"),
    ({"type": "email", "addresses": ["not an address"]}, "invalid_integration", "addresses[0]"),
    ({"type": "email", "addresses": []}, "invalid_integration", "one or more"),
    ({"type": "webhook", "url": "https://h.example.com", "name": ""}, "invalid_integration", "name"),
]


def test_bad_fields_get_clear_400s(client_with: Any, admin_headers: dict[str, str]) -> None:
    client = client_with(smtp_url="smtp://127.0.0.1:2525", email_from="forge-app@example.com")
    for body, code, says in BAD_FIELDS:
        r = client.post(API, json=body, headers=admin_headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == code and says in r.json()["detail"], (body, r.json())
        if isinstance(body.get("secret"), str):
            assert body["secret"] not in r.text
    assert client.get(API, headers=admin_headers).json() == []


def test_not_json_and_not_an_object(client: Any, admin_headers: dict[str, str]) -> None:
    r = client.post(API, content=b"{", headers=admin_headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = client.post(API, json=[1], headers=admin_headers)
    assert r.status_code == 400 and "JSON object" in r.json()["detail"]


def test_patch_rules(client: Any, admin_headers: dict[str, str]) -> None:
    made = create(client, admin_headers, type="slack", url="https://hooks.slack.com/services/a")
    r = client.patch(f"{API}/{made['id']}", json={"type": "webhook"}, headers=admin_headers)
    assert r.status_code == 400 and "type cannot be changed" in r.json()["detail"]
    r = client.patch(f"{API}/{made['id']}", json={"url": "gopher://x"}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_url"
    # a GET body sent back as a PATCH is accepted (read-only fields are ignored)
    doc = client.get(f"{API}/{made['id']}", headers=admin_headers).json()
    assert client.patch(f"{API}/{made['id']}", json=doc, headers=admin_headers).status_code == 200
    assert client.patch(f"{API}/999", json={"name": "x"}, headers=admin_headers).status_code == 404


@pytest.mark.parametrize("path", [f"{API}/999", f"{API}/abc", f"{API}/999/deliveries", f"{API}/99999999999999999999"])
def test_unknown_ids_are_404(client: Any, admin_headers: dict[str, str], path: str) -> None:
    r = client.get(path, headers=admin_headers)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.post(f"{API}/999/test", headers=admin_headers).status_code == 404


def test_test_button_reports_success_and_failure(client: Any, admin_headers: dict[str, str]) -> None:
    with Receiver(Reply(200), Reply(500, body=b"boom")) as receiver:
        made = create(client, admin_headers, type="webhook", url=receiver.url, secret=True)
        ok = client.post(f"{API}/{made['id']}/test", headers=admin_headers)
        assert ok.status_code == 200
        result = ok.json()
        assert result["ok"] is True and result["status_code"] == 200 and result["error"] is None
        assert isinstance(result["latency_ms"], int) and result["latency_ms"] >= 0
        sent = receiver.requests[0]
        assert verify_standard_webhook(made["secret"], sent.headers, sent.body)
        sample = sent.json()[0]["semgrep_finding"]
        assert sample["check_id"] == "forge-app.test-notification" and "test notification" in sample["message"]
        assert sample["metadata"]["forge_app.test"] is True

        failed = client.post(f"{API}/{made['id']}/test", headers=admin_headers)
        assert failed.status_code == 200
        assert failed.json()["ok"] is False and failed.json()["status_code"] == 500
        assert "HTTP 500" in failed.json()["error"] and "boom" in failed.json()["error"]

    deliveries = client.get(f"{API}/{made['id']}/deliveries", headers=admin_headers).json()
    assert [d["kind"] for d in deliveries] == ["test", "test"]
    assert [d["status"] for d in deliveries] == ["failed", "succeeded"], "newest first"
    assert deliveries[0]["attempts"] == 1 and deliveries[0]["status_code"] == 500
    assert set(deliveries[0]) >= {"id", "kind", "status", "status_code", "attempts", "latency_ms", "error",
                                  "webhook_id", "created_at"}
    assert deliveries[1]["webhook_id"] == sent.headers["webhook-id"]
    assert len(client.get(f"{API}/{made['id']}/deliveries?limit=1", headers=admin_headers).json()) == 1


def test_test_button_for_slack(client: Any, admin_headers: dict[str, str]) -> None:
    with Receiver() as receiver:
        made = create(client, admin_headers, type="slack", url=receiver.url)
        assert client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()["ok"] is True
        body = receiver.requests[0].json()
        assert body["blocks"][0]["type"] == "header" and "test" in body["blocks"][0]["text"]["text"]
        assert "webhook-signature" not in receiver.requests[0].headers


def test_openapi_describes_the_routes(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"][API]) == {"get", "post"}
    assert set(spec["paths"][f"{API}/{{integration_id}}"]) == {"get", "patch", "delete"}
    assert "post" in spec["paths"][f"{API}/{{integration_id}}/test"]
    assert "Integration" in spec["components"]["schemas"]


def test_answers_match_the_openapi_description(client: Any, admin_headers: dict[str, str]) -> None:
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    spec = OpenAPI.from_dict(client.get("/openapi.json").json())

    def check(method: str, path: str, response: Any, body: Any = None) -> None:
        import json as _json

        request = MockRequest("http://testserver", method, path, headers=admin_headers,
                              data=_json.dumps(body).encode() if body is not None else None,
                              content_type="application/json")
        errors = list(spec.iter_response_errors(request, MockResponse(response.content, response.status_code,
                                                                       content_type="application/json")))
        assert errors == [], (method, path, errors)

    with Receiver() as receiver:
        body = {"type": "webhook", "url": receiver.url, "filters": {"repositories": ["octo/*"]}, "secret": True}
        made = client.post(API, json=body, headers=admin_headers)
        check("post", API, made, body)
        hook_id = made.json()["id"]
        check("get", API, client.get(API, headers=admin_headers))
        check("get", f"{API}/{hook_id}", client.get(f"{API}/{hook_id}", headers=admin_headers))
        check("patch", f"{API}/{hook_id}", client.patch(f"{API}/{hook_id}", json={"name": "n"}, headers=admin_headers),
              {"name": "n"})
        check("post", f"{API}/{hook_id}/test", client.post(f"{API}/{hook_id}/test", headers=admin_headers))
        check("get", f"{API}/{hook_id}/deliveries", client.get(f"{API}/{hook_id}/deliveries", headers=admin_headers))
        bad = client.post(API, json={"type": "nope"}, headers=admin_headers)
        check("post", API, bad, {"type": "nope"})
        mail = {"type": "email", "addresses": ["a@example.com"]}  # saved with a warning: SMTP is not configured
        warned = client.post(API, json=mail, headers=admin_headers)
        assert warned.json()["warnings"]
        check("post", API, warned, mail)

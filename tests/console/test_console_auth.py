"""Console sign-in, session cookie, CSRF: what keeps the admin console an admin's."""

from __future__ import annotations

import time
from dataclasses import replace

from starlette.testclient import TestClient

from forge_app.console import session
from forge_app.web.app import create_app
from tests.console.helpers import csrf_of, sign_in


def test_signin_form_has_the_labelled_field_and_button(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<label for="token">Admin token</label>' in page.text
    assert ">Sign in</button>" in page.text
    assert "Projects" not in page.text  # no navigation before signing in


def test_right_token_sets_a_signed_httponly_lax_expiring_cookie(client):
    page = client.get("/")
    r = client.post("/", data={"csrf": csrf_of(page.text), "token": "test-admin-token-0123456789abcdef"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(session.SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http test server
    nav = client.get("/projects").text
    for label in ("Projects", "Rule board", "Settings", "Sign out"):
        assert label in nav


def test_cookie_is_secure_when_the_public_url_is_https(settings, storage):
    app = create_app(replace(settings, public_url="https://forge.example"), storage, run_worker=False)
    with TestClient(app, base_url="https://forge.example") as c:
        page = c.get("/")
        r = c.post("/", data={"csrf": csrf_of(page.text), "token": settings.admin_token}, follow_redirects=False)
        cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith(session.SESSION_COOKIE))
        assert "Secure" in cookie


def test_wrong_token_shows_an_error_and_no_session(client):
    page = client.get("/")
    r = client.post("/", data={"csrf": csrf_of(page.text), "token": "not-the-token"}, follow_redirects=False)
    assert r.status_code == 401
    assert "That admin token is not valid" in r.text and 'role="alert"' in r.text
    assert not any(c.startswith(session.SESSION_COOKIE) for c in r.headers.get_list("set-cookie"))
    assert client.get("/projects", follow_redirects=False).status_code == 303


def test_pages_need_a_session(client):
    for path in ("/projects", "/rules", "/settings", "/settings/integrations", "/scans/1"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/?next="), path


def test_a_forged_or_expired_cookie_is_not_a_session(client, settings):
    client.cookies.set(session.SESSION_COOKIE, "9999999999.abc.forged")
    assert client.get("/projects", follow_redirects=False).status_code == 303
    key = session.derive_key(settings.secret_key, settings.admin_token, b"")
    old = session.new_session(key, now=time.time() - session.SESSION_SECONDS - 5)
    client.cookies.set(session.SESSION_COOKIE, old)
    assert client.get("/projects", follow_redirects=False).status_code == 303
    client.cookies.set(session.SESSION_COOKIE, session.new_session(key))
    assert client.get("/projects", follow_redirects=False).status_code == 200


def test_rotating_the_admin_token_signs_sessions_out(settings, storage):
    with TestClient(create_app(settings, storage, run_worker=False)) as c:
        sign_in(c)
        cookie = c.cookies.get(session.SESSION_COOKIE)
    app = create_app(replace(settings, admin_token="another-admin-token-0123456789"), storage, run_worker=False)
    with TestClient(app) as c:
        c.cookies.set(session.SESSION_COOKIE, cookie)
        assert c.get("/projects", follow_redirects=False).status_code == 303


def test_posts_without_a_valid_csrf_token_are_refused(client, storage):
    sign_in(client)
    r = client.post("/settings/integrations/new/webhook", data={"name": "x", "url": "https://example.com/h",
                                                                "action": "save"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/rules", data={"csrf": "forged", "pattern": "a.b", "mode": "block"})
    assert r.status_code == 403
    assert storage.list_integrations() == [] and storage.get_policies()["rules"] == {}
    # the sign-in form is protected too (login CSRF)
    client.cookies.clear()
    assert client.post("/", data={"token": "test-admin-token-0123456789abcdef"}).status_code == 403


def test_sign_out_ends_the_session(client):
    csrf = sign_in(client)
    r = client.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/projects", follow_redirects=False).status_code == 303


def test_next_is_a_local_path_only(client):
    page = client.get("/")
    r = client.post("/", data={"csrf": csrf_of(page.text), "token": "test-admin-token-0123456789abcdef",
                               "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/projects"


def test_console_closed_without_an_admin_token(settings, storage):
    with TestClient(create_app(replace(settings, admin_token=None), storage, run_worker=False)) as c:
        page = c.get("/")
        assert "FORGE_APP_ADMIN_TOKEN" in page.text and "Sign in</button>" not in page.text
        r = c.post("/", data={"token": "anything"})
        assert r.status_code == 403 and "session" not in " ".join(r.headers.get_list("set-cookie"))


def test_api_routes_are_not_shadowed(client, admin_headers):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/api/v1/policies", headers=admin_headers).status_code == 200


def test_odd_posts_get_a_clear_4xx_page(client):
    csrf = sign_in(client)
    r = client.post("/rules", content=b'{"pattern": "x"}', headers={"Content-Type": "application/json"})
    assert r.status_code in (403, 415) and "text/html" in r.headers["content-type"]
    r = client.post("/rules", content=b"csrf=" + csrf.encode() + b"&pattern=" + b"x" * 70_000,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "Form too large" in r.text
    for path in ("/settings/integrations/abc", "/settings/integrations/99999999999999999999", "/projects/-1"):
        assert client.get(path).status_code == 404, path
    r = client.post("/settings/integrations/12345/delete", data={"csrf": csrf})
    assert r.status_code == 404 and "does not exist" in r.text

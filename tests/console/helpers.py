"""Signing in to the console from a TestClient and reading forms' CSRF tokens."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.conftest import ADMIN_TOKEN

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, token: str = ADMIN_TOKEN) -> str:
    """Sign in through the form; returns a CSRF token for further posts."""
    page = client.get("/")
    r = client.post("/", data={"csrf": csrf_of(page.text), "token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/settings").text)

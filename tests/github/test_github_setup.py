"""Registering the app from app.yml (manifest flow): the page, the callback, the CLI."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from argparse import Namespace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from starlette.testclient import TestClient

from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.manifest import APP_YML, ManifestError, build_manifest, load_manifest_template
from forge_app.web.app import create_app
from tests.github.fake_github import app_key
from tests.github.gh_helpers import deliver, payload


def unconfigured(settings):
    return dataclasses.replace(settings, github_app_id=None, github_private_key=None, github_webhook_secret=None)


def form_of(page: str) -> tuple[str, dict]:
    action = html.unescape(re.search(r'<form id="manifest-form" method="post" action="([^"]+)"', page).group(1))
    manifest = json.loads(html.unescape(re.search(r'name="manifest" value="([^"]+)"', page).group(1)))
    return action, manifest


def test_app_yml_is_the_source_of_truth() -> None:
    parsed = load_manifest_template()
    root = Path(__file__).resolve().parents[2] / "app.yml"
    assert root.is_symlink() and root.read_bytes() == APP_YML.read_bytes()  # one file, readable at the root
    assert parsed == yaml.safe_load(root.read_text()) and parsed["name"] == "forge-app"
    assert parsed["default_permissions"] == {"pull_requests": "write", "checks": "write", "statuses": "write",
                                             "contents": "read", "metadata": "read"}
    assert set(parsed["default_events"]) >= {"pull_request", "push", "check_suite", "check_run"}
    assert "installation" not in parsed["default_events"]


def test_a_manifest_that_is_not_a_mapping_is_refused(tmp_path) -> None:
    for text in ("- just\n- a list\n", "name: [unclosed\n"):
        (tmp_path / "app.yml").write_text(text)
        with pytest.raises(ManifestError):
            load_manifest_template(tmp_path / "app.yml")


def test_manifest_urls_point_at_this_server(settings) -> None:
    manifest = build_manifest(dataclasses.replace(settings, public_url="https://review.acme.dev"))
    assert manifest["hook_attributes"] == {"url": "https://review.acme.dev/webhooks/github", "active": True}
    assert manifest["redirect_url"] == "https://review.acme.dev/github/callback"
    assert manifest["setup_url"] == "https://review.acme.dev/github/installed"
    assert manifest["callback_urls"] == ["https://review.acme.dev/github/callback"]
    assert "example.com" not in json.dumps(manifest)


def test_full_registration(settings, storage, fake_github) -> None:
    bare = unconfigured(settings)
    app = create_app(bare, storage, run_worker=False)
    pem, _ = app_key()
    with TestClient(app) as c:
        page = c.get("/github/setup?org=acme")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        action, manifest = form_of(page.text)
        assert action.startswith("https://github.example/organizations/acme/settings/apps/new?state=")
        assert manifest["hook_attributes"]["url"] == "http://testserver/webhooks/github"
        state = parse_qs(urlsplit(action).query)["state"][0]

        # GitHub created the app and sends the browser back with a code.
        fake_github.conversions["c0de1234"] = {
            "id": 777, "slug": "forge-app-acme", "name": "forge-app (acme)", "node_id": "A_1",
            "owner": {"login": "acme"}, "html_url": "https://github.example/apps/forge-app-acme",
            "client_id": "Iv1.abc", "client_secret": "client-secret-value", "webhook_secret": "hook-secret-value",
            "pem": pem}
        assert c.get("/github/callback", params={"code": "c0de1234", "state": "forged-state-000"}).status_code == 400
        done = c.get("/github/callback", params={"code": "c0de1234", "state": state})
        assert done.status_code == 200, done.text
        assert 'href="https://github.example/apps/forge-app-acme/installations/new"' in done.text
        again = c.get("/github/callback", params={"code": "c0de1234", "state": state})
        assert again.status_code == 400  # a state works once

        # Stored encrypted; the webhook now verifies with the registered secret.
        raw = json.dumps(storage.get_setting("github_app"))
        assert "BEGIN" not in raw and "hook-secret-value" not in raw and "client-secret-value" not in raw
        creds = load_credentials(bare, storage)
        assert (creds.app_id, creds.slug, creds.webhook_secret) == ("777", "forge-app-acme", "hook-secret-value")
        assert creds.private_key == pem and "BEGIN" not in repr(creds)
        assert deliver(c, "ping", payload("ping/default"), secret="hook-secret-value").status_code == 200

        # Once configured, the page needs a link from `forge-app github setup`.
        assert c.get("/github/setup").status_code == 403
        assert c.get("/github/installed?installation_id=42&setup_action=install").status_code == 200

    # Environment variables still win.
    env = dataclasses.replace(bare, github_app_id="9", github_webhook_secret="from-env")
    assert load_credentials(env, storage).app_id == "9"
    assert load_credentials(env, storage).webhook_secret == "from-env"


def test_setup_needs_a_secret_key(settings, storage) -> None:
    app = create_app(dataclasses.replace(unconfigured(settings), secret_key=None), storage, run_worker=False)
    with TestClient(app) as c:
        response = c.get("/github/setup")
    assert response.status_code == 503 and "FORGE_APP_SECRET_KEY" in response.json()["detail"]


def test_cli_prints_a_working_link(settings, storage, monkeypatch, capsys) -> None:
    from forge_app.forges.github import cli

    monkeypatch.setenv("FORGE_APP_DATABASE", settings.database)
    monkeypatch.setenv("FORGE_APP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("FORGE_APP_PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("FORGE_APP_GITHUB_WEB_URL", "https://github.example")
    for name in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert cli.run(Namespace(github_verb="setup", org=None)) == 0
    out = capsys.readouterr()
    url = out.out.strip().splitlines()[-1]
    assert url.startswith("http://testserver/github/setup?token=")
    assert "Create GitHub App" in out.err
    # The app is configured (environment), so only the printed link opens the page.
    app = create_app(settings, storage, run_worker=False)
    with TestClient(app) as c:
        assert c.get("/github/setup").status_code == 403
        assert c.get("/github/setup?token=not-a-real-token-123").status_code == 403
        page = c.get(url.replace("http://testserver", ""))
        assert page.status_code == 200
        action, _ = form_of(page.text)
        assert action.startswith("https://github.example/settings/apps/new?state=")


def test_cli_without_secret_key_uses_a_generated_local_key(settings, monkeypatch, capsys) -> None:
    from pathlib import Path

    from forge_app.forges.github import cli

    monkeypatch.setenv("FORGE_APP_DATABASE", settings.database)
    monkeypatch.delenv("FORGE_APP_SECRET_KEY", raising=False)
    assert cli.run(Namespace(github_verb="setup", org="acme", init=True)) == 0  # a new database here
    out = capsys.readouterr()
    assert "/github/setup" in out.out
    key_file = Path(settings.database).parent / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_text().strip()) >= 32
    assert "FORGE_APP_SECRET_KEY is not set" in out.err


@pytest.mark.parametrize("org", ["bad org", "-x" * 30])
def test_org_names_are_checked(settings, storage, org) -> None:
    with TestClient(create_app(unconfigured(settings), storage, run_worker=False)) as c:
        assert c.get("/github/setup", params={"org": org}).status_code == 400

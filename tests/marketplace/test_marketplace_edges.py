"""The Setup URL's faults, data retention after a cancellation, `forge-app upload` exiting 0
when nothing was published, and nothing changed when no plans file is configured."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from forge_app.forges.github.marketplace.jobs import purge_expired
from forge_app.web.app import create_app
from tests.cli.test_upload_cli_live import checkout, github_env, run_upload, server  # noqa: F401 (fixtures)
from tests.conftest import drain
from tests.github.gh_helpers import deliver, installation_event
from tests.marketplace.mp_helpers import FREE, ORG_ID, PRO, deliver_listing, purchase_event
from tests.marketplace.test_marketplace_webhook import _scan

INSTALLS = [{"id": 1001, "account": {"login": "octo", "id": ORG_ID, "type": "Organization"}}]


def _state(client) -> str:
    start = client.get("/github/installed?installation_id=1001&setup_action=install", follow_redirects=False)
    assert start.status_code == 302
    return parse_qs(urlsplit(start.headers["location"]).query)["state"][0]


def test_setup_url_refuses_forged_and_reused_state_and_strangers(client, fake_github) -> None:
    code = fake_github.add_user("mona", 5001, INSTALLS)
    forged = client.get(f"/github/marketplace/callback?code={code}&state=forged-state")
    assert forged.status_code == 400 and "already used" in forged.text
    state = _state(client)
    assert client.get(f"/github/marketplace/callback?code={code}&state={state}").status_code == 200
    code2 = fake_github.add_user("mona", 5001, INSTALLS)
    reused = client.get(f"/github/marketplace/callback?code={code2}&state={state}")
    assert reused.status_code == 400
    stranger = fake_github.add_user("eve", 6666, installations=[])
    page = client.get(f"/github/marketplace/callback?code={stranger}&state={_state(client)}")
    assert page.status_code == 403 and "cannot reach this installation" in page.text
    assert client.get("/github/installed?installation_id=abc").status_code == 400


def test_setup_url_without_plans_is_the_plain_installed_page(settings, storage) -> None:
    app = create_app(dataclasses.replace(settings, marketplace_plans=None), storage, run_worker=False)
    with TestClient(app) as c:
        page = c.get("/github/installed?installation_id=1001&setup_action=install", follow_redirects=False)
    assert page.status_code == 200 and "forge-app is installed" in page.text


def test_data_is_deleted_30_days_after_cancellation_unless_bought_again(client, app, storage, tmp_path) -> None:
    deliver_listing(client, purchase_event("purchased", PRO))
    deliver_listing(client, purchase_event("purchased", PRO, login="stay", account_id=5))
    drain(app)
    _scan(client, storage, tmp_path, "octo/app")
    _scan(client, storage, tmp_path, "stay/app")
    deliver_listing(client, purchase_event("cancelled", PRO, effective="2026-12-01T00:00:00Z"))
    deliver_listing(client, purchase_event("cancelled", PRO, login="stay", account_id=5,
                                           effective="2026-12-01T00:00:00Z"))
    deliver_listing(client, purchase_event("purchased", FREE, login="stay", account_id=5,
                                           effective="2026-12-20T00:00:00Z"))
    drain(app)
    octo, stay = storage.ensure_repository("github", "octo/app"), storage.ensure_repository("github", "stay/app")
    assert purge_expired(storage, now="2026-12-30T00:00:00+00:00") == []  # 29 days: kept
    assert purge_expired(storage, now="2026-12-31T00:00:01+00:00") == ["octo: 1 scan(s) deleted"]
    assert not storage.repository_has_scans(octo.id) and storage.repository_has_scans(stay.id)
    assert purge_expired(storage, now="2027-02-01T00:00:00+00:00") == []  # once


def test_upload_exits_0_and_says_why_nothing_was_published(server, settings, storage, checkout,  # noqa: F811
                                                           tmp_path) -> None:
    storage.put_policies("comment", {"python.lang.security.eval": "block"})  # would exit 1 if published
    token = storage.create_upload_token("github", "octo/demo")
    done = run_upload(["semgrep.json", "--server", server, "--token", token], github_env(tmp_path, 3), checkout)
    assert done.returncode == 0, done.stderr
    assert "blocking findings are new" in done.stdout
    assert "nothing published on the forge: octo has no plan on the GitHub Marketplace listing" in done.stderr


def test_without_plans_every_scan_is_published_as_before(settings, storage, tmp_path) -> None:
    app = create_app(replace(settings, marketplace_plans=None), storage, run_worker=False)
    with TestClient(app) as c:
        event = installation_event("created", 3, ["solo/x"], account="solo")
        assert deliver(c, "installation", event).status_code == 202
        scan = _scan(c, storage, tmp_path, "solo/x", pr=2)
        assert scan["published"] is True and scan["reason"] is None
        listed = c.get("/api/v1/marketplace/accounts", headers={"Authorization": f"Bearer {settings.admin_token}"})
    assert storage.jobs(kind="marketplace_daily") == []
    assert listed.status_code == 200


def test_setup_public_registers_a_public_app_with_the_setup_urls_callback(settings, storage, monkeypatch,
                                                                         capsys) -> None:
    from forge_app.cli.main import main
    from tests.github.test_github_setup import form_of

    bare = dataclasses.replace(settings, github_app_id=None, github_private_key=None, github_webhook_secret=None)
    for key, value in {"FORGE_APP_DATABASE": settings.database, "FORGE_APP_SECRET_KEY": settings.secret_key,
                       "FORGE_APP_PUBLIC_URL": "http://testserver"}.items():
        monkeypatch.setenv(key, value)
    for key in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET", "FORGE_APP_MARKETPLACE_PLANS"):
        monkeypatch.delenv(key, raising=False)
    assert main(["github", "setup", "--public"]) == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert "public=1" in link
    with TestClient(create_app(bare, storage, run_worker=False)) as c:
        page = c.get(link.replace("http://testserver", ""))
    assert page.status_code == 200, page.text
    _, manifest = form_of(page.text)
    assert manifest["public"] is True
    assert manifest["callback_urls"] == ["http://testserver/github/callback",
                                         "http://testserver/github/marketplace/callback"]
    assert manifest["setup_url"] == "http://testserver/github/installed"


def test_a_failed_revocation_is_retried_and_the_cancellation_stands(client, app, storage, fake_github,
                                                                   admin_headers) -> None:
    deliver_listing(client, purchase_event("purchased", PRO))
    drain(app)
    code = fake_github.add_user("mona", 5001, INSTALLS)
    assert client.get(f"/github/marketplace/callback?code={code}&state={_state(client)}").status_code == 200
    fake_github.inject("DELETE", r"/applications/", 502)
    deliver_listing(client, purchase_event("cancelled", PRO, effective="2026-12-09T00:00:00Z"))
    drain(app)
    job = storage.jobs(kind="marketplace_event")[-1]
    assert job["status"] == "queued" and "502" in job["last_error"] and fake_github.revoked == []
    assert storage.marketplace_account(ORG_ID).state == "cancelled"
    assert len(storage.marketplace_user_tokens(ORG_ID)) == 1  # kept until GitHub confirms


def test_a_scan_completed_from_the_forges_files_keeps_its_decision(client, app, storage, fake_github,
                                                                  admin_headers) -> None:
    """An upload whose files are read from GitHub first (`processing`) is decided at upload, and the
    Free plan's `block: false` applies when it is completed."""
    from tests.web.source_story import BASE_FILES, EVAL, get_scan, post_raw, report, semgrep_results

    fake_github.add_installation(1001, "octo", ["octo/demo"])
    storage.upsert_github_installation(1001)
    storage.link_github_repositories(1001, ["octo/demo"])
    storage.record_repository_visibility("github", {"octo/demo": False})
    storage.put_policies("comment", {EVAL: "block"})
    deliver_listing(client, purchase_event("purchased", FREE))
    drain(app)
    token = storage.create_upload_token("github", "octo/demo")
    commit = "a" * 40
    fake_github.add_commit("octo/demo", commit, BASE_FILES)
    answer = post_raw(client, token, report(semgrep_results(BASE_FILES)), commit=commit)
    assert answer["status"] == "processing" and answer["published"] is True
    drain(app)
    done = get_scan(client, token, answer["id"], findings="all")
    assert done["status"] == "done" and done["blocking"] is False and done["published"] is True
    assert EVAL in {f["rule_id"] for f in done["findings"]}
    assert {f["mode"] for f in done["findings"]} == {"comment"}

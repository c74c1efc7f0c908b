"""`forge-app github marketplace-sync`: a lost `purchased` is recovered, every page is read,
a listing error changes nothing, the stubbed routes are used on request."""

from __future__ import annotations

import pytest

from forge_app.cli.main import main
from tests.conftest import SECRET_KEY, drain
from tests.marketplace.mp_helpers import FREE, ORG_ID, PRO, deliver_listing, purchase_event
from tests.marketplace.test_marketplace_webhook import _scan, accounts


@pytest.fixture
def env(monkeypatch, settings, fake_github, plans_file):
    values = {
        "FORGE_APP_DATABASE": settings.database, "FORGE_APP_SECRET_KEY": SECRET_KEY,
        "GITHUB_APP_ID": str(fake_github.app_id), "GITHUB_PRIVATE_KEY": fake_github.private_key,
        "FORGE_APP_GITHUB_API_URL": fake_github.url, "FORGE_APP_MARKETPLACE_PLANS": str(plans_file),
        "GITHUB_CLIENT_ID": fake_github.client_id, "GITHUB_CLIENT_SECRET": fake_github.client_secret,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("FORGE_APP_MARKETPLACE_STUBBED", raising=False)
    return values


def test_a_lost_purchase_is_served_after_sync(client, app, storage, fake_github, env, tmp_path, capsys,
                                             admin_headers) -> None:
    fake_github.mp_plan(FREE[0], "Free", "FREE")
    fake_github.mp_plan(PRO[0], "Pro")
    fake_github.mp_account(PRO[0], ORG_ID, "octo")
    assert _scan(client, storage, tmp_path, "octo/app", pr=1)["published"] is False  # nothing known yet
    assert main(["github", "marketplace-sync"]) == 0
    out = capsys.readouterr().out
    assert "plans (listing): Free, Pro" in out and "accounts: 1" in out and "changes applied: 1" in out
    assert "octo: active on 'Pro'" in out
    assert _scan(client, storage, tmp_path, "octo/app", pr=2)["published"] is True
    # Running it again changes nothing.
    assert main(["github", "marketplace-sync"]) == 0
    assert "changes applied: 0" in capsys.readouterr().out


def test_every_page_of_every_plan_is_applied(storage, fake_github, env, capsys) -> None:
    fake_github.mp_plan(FREE[0], "Free", "FREE")
    fake_github.mp_plan(PRO[0], "Pro")
    for i in range(250):
        fake_github.mp_account(FREE[0] if i % 2 else PRO[0], 100_000 + i, f"org{i}")
    assert main(["github", "marketplace-sync"]) == 0
    assert "accounts: 250" in capsys.readouterr().out
    assert len(storage.marketplace_accounts()) == 250
    assert fake_github.count("GET", r"/plans/\d+/accounts") == 4  # 125 accounts each: 2 pages of 100 per plan
    assert all("per_page=100" in r["query"] for r in fake_github.requests if "accounts" in r["path"])


@pytest.mark.parametrize("status", [401, 404, 502])
def test_a_listing_error_is_reported_and_changes_nothing(client, app, storage, fake_github, env, capsys,
                                                         admin_headers, status) -> None:
    deliver_listing(client, purchase_event("purchased", FREE))
    drain(app)
    fake_github.mp_plan(PRO[0], "Pro")
    for i in range(150):
        fake_github.mp_account(PRO[0], 200_000 + i, f"org{i}")
    fake_github.inject("GET", r"/plans/2/accounts", status, times=5 if status == 502 else 1)
    before = accounts(client, admin_headers)
    # The first page is refused: nothing is written, not even what other plans listed.
    assert main(["github", "marketplace-sync"]) == 1
    out = capsys.readouterr().out
    assert f"GitHub answered {status}" in out and "nothing was changed" in out
    assert accounts(client, admin_headers) == before


def test_an_account_no_plan_lists_is_cancelled_by_the_sync(client, app, storage, fake_github, env, capsys,
                                                           admin_headers) -> None:
    deliver_listing(client, purchase_event("purchased", PRO))
    drain(app)
    fake_github.mp_plan(PRO[0], "Pro")
    assert main(["github", "marketplace-sync"]) == 0
    assert "octo: active -> cancelled" in capsys.readouterr().out
    assert accounts(client, admin_headers)["octo"]["state"] == "cancelled"


def test_stubbed_listing_routes(storage, fake_github, env, monkeypatch, capsys) -> None:
    monkeypatch.setenv("FORGE_APP_MARKETPLACE_STUBBED", "1")
    fake_github.mp_plan(PRO[0], "Pro")
    fake_github.mp_account(PRO[0], ORG_ID, "octo")
    assert main(["github", "marketplace-sync"]) == 0
    assert "plans (stubbed listing): Pro" in capsys.readouterr().out
    paths = [r["path"] for r in fake_github.requests]
    assert paths and all(p.startswith("/marketplace_listing/stubbed/") for p in paths)


def test_daily_job_syncs_and_queues_the_next_day(client, app, storage, fake_github, env) -> None:
    from forge_app.forges.github.marketplace.jobs import DAILY

    fake_github.mp_plan(PRO[0], "Pro")
    fake_github.mp_account(PRO[0], ORG_ID, "octo")
    queued = storage.jobs(kind=DAILY)
    assert len(queued) == 1  # queued at start-up because plans are configured
    drain(app)
    assert storage.marketplace_account(ORG_ID).plan_name == "Pro"
    jobs = storage.jobs(kind=DAILY)
    assert len(jobs) == 2 and sorted(j["status"] for j in jobs) == ["done", "queued"]

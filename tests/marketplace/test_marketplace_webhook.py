"""The listing webhook's bad input and faults: wrong secret, replays, unknown actions, lenient
validation, events out of order, a purchase before the installation, a plan the plans file lacks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from forge_app.web.app import create_app
from tests.conftest import drain
from tests.github.gh_helpers import WEBHOOK_SECRET, deliver, installation_event, scan_tree, sha, upload, write_tree
from tests.marketplace.mp_helpers import FREE, PRO, deliver_listing, purchase_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github" / "marketplace" / "webhooks"


def accounts(client, admin_headers) -> dict[str, dict]:
    response = client.get("/api/v1/marketplace/accounts", headers=admin_headers)
    assert response.status_code == 200, response.text
    return {a["login"]: a for a in response.json()}


def test_signed_with_the_apps_secret_is_refused_and_changes_nothing(client, app, storage, admin_headers) -> None:
    response = deliver_listing(client, purchase_event("purchased", PRO), secret=WEBHOOK_SECRET)
    assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
    assert "GITHUB_MARKETPLACE_WEBHOOK_SECRET" in response.json()["detail"]
    drain(app)
    assert accounts(client, admin_headers) == {} and storage.jobs(kind="marketplace_event") == []
    # ... and a listing delivery sent to the App's webhook is not a purchase either.
    assert deliver(client, "marketplace_purchase", purchase_event("purchased", PRO)).status_code == 202
    drain(app)
    assert accounts(client, admin_headers) == {}


def test_no_listing_secret_configured_is_a_clear_503(settings, storage) -> None:
    from starlette.testclient import TestClient

    app = create_app(dataclasses.replace(settings, github_marketplace_webhook_secret=None), storage, run_worker=False)
    with TestClient(app) as c:
        response = deliver_listing(c, purchase_event("purchased", PRO))
    assert response.status_code == 503 and response.json()["error"] == "marketplace_not_configured"


def test_ping_replay_and_unknown_action(client, app, storage, admin_headers) -> None:
    assert deliver_listing(client, {"zen": "Keep it simple.", "hook_id": 9}, event="ping").status_code == 200
    body = purchase_event("purchased", PRO)
    first = deliver_listing(client, body, delivery="d-1")
    again = deliver_listing(client, body, delivery="d-1")
    assert first.status_code == 202 and again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(storage.jobs(kind="marketplace_event")) == 1
    unknown = deliver_listing(client, {**body, "action": "refunded"})
    assert unknown.status_code == 202 and unknown.json()["status"] == "ignored"
    assert "unknown action" in unknown.json()["detail"]
    broken = deliver_listing(client, {**body, "marketplace_purchase": {"plan": {"id": 1}}})
    assert broken.status_code == 400 and broken.json()["error"] == "invalid_payload"
    drain(app)
    assert accounts(client, admin_headers)["octo"]["plan"]["name"] == "Pro"


def test_real_payloads_that_fail_the_strict_schema_are_still_applied(client, app, admin_headers) -> None:
    """The octokit example says `per-unit` (GitHub's enum: PER_UNIT); add an unknown key and a null
    billing date, which the strict schema refuses: the purchase still counts."""
    from jsonschema import Draft7Validator

    body = json.loads((FIXTURES / "marketplace_purchase" / "purchased.json").read_text())
    body["marketplace_purchase"]["next_billing_date"] = None
    body["marketplace_purchase"]["account"]["something_new"] = True
    schema = json.loads((FIXTURES / "marketplace_purchase.schema.json").read_text())
    assert list(Draft7Validator(schema).iter_errors(body)), "the strict schema should refuse this delivery"
    assert deliver_listing(client, body).status_code == 202
    drain(app)
    got = accounts(client, admin_headers)["username"]
    assert got["plan"] == {"id": 435, "name": "Basic Plan", "price_model": "per-unit", "unit_count": 1}
    assert got["next_billing_date"] is None and got["state"] == "active"
    assert got["served"] is False and "not in this server's plans file" in got["reason"]


def test_out_of_order_the_latest_effective_date_wins(client, app, admin_headers) -> None:
    deliver_listing(client, purchase_event("changed", PRO, previous=FREE, effective="2026-12-05T00:00:00Z"))
    deliver_listing(client, purchase_event("purchased", FREE, effective="2026-12-01T00:00:00+00:00"))
    drain(app)
    assert accounts(client, admin_headers)["octo"]["plan"]["name"] == "Pro"
    # A cancellation older than the upgrade changes nothing either.
    deliver_listing(client, purchase_event("cancelled", FREE, effective="2026-12-03T00:00:00Z"))
    drain(app)
    assert accounts(client, admin_headers)["octo"]["state"] == "active"


def test_pending_change_cancelled_and_trial(client, app, admin_headers) -> None:
    deliver_listing(client, purchase_event("purchased", PRO, trial_ends="2026-12-15T00:00:00Z"))
    deliver_listing(client, purchase_event("pending_change", FREE, previous=PRO, effective="2027-01-01T00:00:00Z"))
    drain(app)
    got = accounts(client, admin_headers)["octo"]
    assert got["on_free_trial"] is True and got["free_trial_ends_on"] == "2026-12-15T00:00:00+00:00"
    assert got["pending_change"]["plan"]["name"] == "Free"
    deliver_listing(client, purchase_event("pending_change_cancelled", FREE, previous=PRO,
                                           effective="2026-12-10T00:00:00Z"))
    drain(app)
    got = accounts(client, admin_headers)["octo"]
    assert got["pending_change"] is None and got["plan"]["name"] == "Pro"


def _scan(client, storage, tmp_path, repo: str, pr: int | None = None) -> dict:
    token = storage.create_upload_token("github", repo)
    tree = write_tree(tmp_path / repo.replace("/", "_"), {"a.py": "eval(x)\n"})
    return upload(client, token, commit=sha(f"{repo}:{pr}"), findings=scan_tree(tree), pr=pr, repo=repo,
                  branch="feature" if pr else "main", base_branch="main" if pr else None)


def test_purchase_before_installation_is_kept_and_a_plan_missing_from_the_file_is_not_served(
        client, app, storage, admin_headers, tmp_path) -> None:
    deliver_listing(client, purchase_event("purchased", PRO, login="newco", account_id=9))
    deliver_listing(client, purchase_event("purchased", (3, "Enterprise"), login="bigco", account_id=10))
    drain(app)
    assert accounts(client, admin_headers)["newco"]["served"] is True
    # The installation arrives afterwards: its repositories are served by the plan bought before.
    event = installation_event("created", 2002, ["newco/api"], account="newco")
    assert deliver(client, "installation", event).status_code == 202
    drain(app)
    assert _scan(client, storage, tmp_path, "newco/api")["published"] is True
    scan = _scan(client, storage, tmp_path, "bigco/web")
    assert scan["published"] is False and "'Enterprise'" in scan["reason"] and "plans file" in scan["reason"]


def test_an_account_that_never_bought_is_listed_as_none_and_not_served(client, app, storage, admin_headers,
                                                                      tmp_path) -> None:
    event = installation_event("created", 3003, ["solo/x"], account="solo")
    assert deliver(client, "installation", event).status_code == 202
    drain(app)
    got = accounts(client, admin_headers)["solo"]
    assert got["state"] == "none" and got["plan"] is None and got["served"] is False
    scan = _scan(client, storage, tmp_path, "solo/x", pr=3)
    assert scan["published"] is False and "no plan" in scan["reason"]
    assert client.get("/api/v1/marketplace/accounts").status_code == 401


def test_repository_limit_counts_repositories_with_scans_in_order(storage, settings, tmp_path) -> None:
    from starlette.testclient import TestClient

    from forge_app.core.plans import PlanLimits

    app = create_app(dataclasses.replace(settings, marketplace_plans={
        "Pro": PlanLimits(repositories=1, private_repositories=True, block=True)}), storage, run_worker=False)
    with TestClient(app) as client:
        deliver_listing(client, purchase_event("purchased", PRO))
        drain(app)
        assert _scan(client, storage, tmp_path, "octo/one")["published"] is True
        second = _scan(client, storage, tmp_path, "octo/two")
        assert second["published"] is False and "covers 1 repository" in second["reason"]
        # The first repository keeps its place: a later scan of it is still served.
        assert _scan(client, storage, tmp_path, "octo/one", pr=4)["published"] is True

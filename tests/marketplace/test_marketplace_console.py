"""Settings → Marketplace in the web console lists the same accounts as the admin API."""

from __future__ import annotations

from tests.conftest import drain
from tests.console.helpers import sign_in
from tests.github.gh_helpers import deliver, installation_event
from tests.marketplace.mp_helpers import FREE, PRO, deliver_listing, purchase_event


def test_marketplace_page_lists_accounts_plans_and_why_not_served(client, app, admin_headers) -> None:
    assert client.get("/settings/marketplace", follow_redirects=False).status_code in (302, 303)  # signed out
    deliver_listing(client, purchase_event("purchased", PRO, trial_ends="2026-12-15T00:00:00Z"))
    deliver_listing(client, purchase_event("pending_change", FREE, previous=PRO, effective="2027-01-01T00:00:00Z"))
    deliver(client, "installation", installation_event("created", 5, ["solo/x"], account="solo"))
    drain(app)
    sign_in(client)
    assert "/settings/marketplace" in client.get("/settings").text
    page = client.get("/settings/marketplace")
    assert page.status_code == 200
    html = page.text
    assert "<strong>Free</strong>" in html and "public only" in html  # the plans file
    row = html.split("<td>octo")[1].split("</tr>")[0]
    assert "Pro" in row and "active" in row and "2026-12-15" in row and "Free from 2027-01-01" in row
    solo = html.split("<td>solo")[1].split("</tr>")[0]
    assert "none" in solo and "no: solo has no plan" in solo
    api = {a["login"]: a for a in client.get("/api/v1/marketplace/accounts", headers=admin_headers).json()}
    assert set(api) == {"octo", "solo"}

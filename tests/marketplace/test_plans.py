"""The plans file (a bad one stops the server with the reason) and the pure serving decision."""

from __future__ import annotations

import json

import pytest

from forge_app.cli.main import main
from forge_app.config import ConfigError, Settings
from forge_app.core.plans import LIMIT_REACHED, NO_PLAN, AccountPlan, PlanLimits, PlansError, decide, parse_plans
from forge_app.forges.github.marketplace.ledger import Purchase, PurchaseEvent, apply_event

PLANS = {"Free": PlanLimits(None, False, False), "Team": PlanLimits(3, True, True)}


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ('{"Free": {}}', 'must be an object with a "plans" object'),
    ('{"plans": {"Free": {"repos": 3}}}', "unknown limit(s) repos"),
    ('{"plans": {"Free": {"repositories": "3"}}}', "repositories must be a whole number"),
    ('{"plans": {"Free": {"block": "no"}}}', "block must be true or false"),
    ('{"plans": {"Free": []}}', "must map to an object"),
])
def test_a_bad_plans_file_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(PlansError) as caught:
        parse_plans(text)
    assert message in str(caught.value)


def test_the_server_does_not_start_with_a_bad_plans_file(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "plans.json"
    bad.write_text(json.dumps({"plans": {"Free": {"seats": 1}}}))
    monkeypatch.setenv("FORGE_APP_DATABASE", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv("FORGE_APP_MARKETPLACE_PLANS", str(bad))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "FORGE_APP_MARKETPLACE_PLANS" in err and "unknown limit(s) seats" in err
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings.from_env({"FORGE_APP_MARKETPLACE_PLANS": str(tmp_path / "missing.json")})


def test_no_plans_file_means_marketplace_off() -> None:
    settings = Settings.from_env({})
    assert settings.marketplace_plans is None and settings.marketplace is False


def test_decision() -> None:
    free = AccountPlan("octo", "active", "Free")
    assert decide(free, PLANS, private=False, scanned_before=99).served
    assert not decide(free, PLANS, private=False, scanned_before=0).block_allowed
    limited = decide(free, PLANS, private=True, scanned_before=0)
    assert not limited.served and limited.title == LIMIT_REACHED
    unknown_visibility = decide(free, PLANS, private=None, scanned_before=0)
    assert not unknown_visibility.served and "not known yet" in unknown_visibility.reason
    team = AccountPlan("octo", "active", "Team")
    assert decide(team, PLANS, private=True, scanned_before=2).served
    assert decide(team, PLANS, private=True, scanned_before=3).title == LIMIT_REACHED
    for account in (None, AccountPlan("octo", "none"), AccountPlan("octo", "cancelled", "Team"),
                    AccountPlan("octo", "active", "Gold")):
        verdict = decide(account, PLANS, private=False, scanned_before=0)
        assert not verdict.served and verdict.title == NO_PLAN


def _event(action: str, plan: tuple[int, str], effective: str) -> PurchaseEvent:
    return PurchaseEvent(action, effective, Purchase(1, "octo", "Organization", plan[0], plan[1]))


def test_ledger_orders_by_effective_date_and_cancellation_schedules_deletion() -> None:
    acct = apply_event(None, _event("purchased", (1, "Free"), "2026-12-01T00:00:00+00:00"))
    assert acct is not None and acct.state == "active"
    up = apply_event(acct, _event("changed", (2, "Team"), "2026-12-02T00:00:00+00:00"))
    assert up is not None and up.plan_name == "Team"
    assert apply_event(up, _event("purchased", (1, "Free"), "2026-12-01T00:00:00+00:00")) is None
    gone = apply_event(up, _event("cancelled", (2, "Team"), "2026-12-10T00:00:00+00:00"))
    assert gone is not None and gone.state == "cancelled" and gone.purge_after == "2027-01-09T00:00:00+00:00"
    back = apply_event(gone, _event("purchased", (1, "Free"), "2026-12-20T00:00:00+00:00"))
    assert back is not None and back.state == "active" and back.purge_after is None

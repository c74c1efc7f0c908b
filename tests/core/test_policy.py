"""Which mode applies to a rule: exact id, most specific glob, rule metadata, default."""

from hypothesis import given
from hypothesis import strategies as st

from forge_app.core.policy import Policy, mode_for


def test_exact_beats_glob_and_specific_glob_beats_general():
    p = Policy("comment", {"python.*": "monitor", "python.flask.*": "block", "python.flask.x": "comment"})
    assert mode_for("python.flask.x", {}, p) == "comment"
    assert mode_for("python.flask.y", {}, p) == "block"
    assert mode_for("python.django.y", {}, p) == "monitor"
    assert mode_for("go.x", {}, p) == "comment"


def test_rule_metadata_is_honoured_only_when_no_policy_names_the_rule():
    p = Policy("comment", {"named": "monitor"})
    assert mode_for("other", {"dev.semgrep.actions": ["block"]}, p) == "block"
    assert mode_for("other", {"dev.semgrep.actions": []}, p) == "monitor"
    assert mode_for("named", {"dev.semgrep.actions": ["block"]}, p) == "monitor"
    assert mode_for("other", {"dev.semgrep.actions": "block"}, p) == "comment"  # not a list: ignored


@given(st.text(min_size=1, max_size=30), st.sampled_from(["monitor", "comment", "block"]))
def test_default_applies_when_nothing_matches(rule_id, default):
    assert mode_for(rule_id, {}, Policy(default, {})) == default

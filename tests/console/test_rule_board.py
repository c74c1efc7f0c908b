"""The Rule board places each rule in the column `core.policy.mode_for` gives it (its speed: bench/console.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_app.console.rule_pages import board
from forge_app.core.policy import mode_for, parse_policy

PART = st.sampled_from(["py", "js", "lang", "sec", "eval", "x"])
RULE = st.lists(PART, min_size=1, max_size=4).map(".".join)
GLOB = st.tuples(RULE, st.sampled_from(["*", ".*", "?", "*.eval", ""])).map("".join)
MODE = st.sampled_from(["monitor", "comment", "block"])
ACTIONS = st.one_of(st.none(), st.lists(st.sampled_from(["block", "comment"]), max_size=2))


@settings(max_examples=200, deadline=None)
@given(rules=st.lists(RULE, max_size=15), patterns=st.dictionaries(st.one_of(RULE, GLOB), MODE, max_size=8),
       default=MODE, actions=st.dictionaries(RULE, ACTIONS, max_size=5))
def test_each_rule_is_in_the_column_mode_for_gives(rules, patterns, default, actions):
    policy_doc = {"default": default, "rules": patterns}
    served = {r: ({} if a is None else {"dev.semgrep.actions": a}) for r, a in actions.items()}
    result = board({r: 1 for r in rules}, policy_doc, served)
    policy = parse_policy(policy_doc)
    placed = {item["rule"]: column for column, items in result["columns"].items() for item in items}
    for rule, column in placed.items():
        assert column == mode_for(rule, served.get(rule, {}), policy), rule
    assert set(rules) <= set(placed)


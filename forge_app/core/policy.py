"""The rule board: which mode (monitor, comment, block) applies to a rule.

Resolution order, most specific first: an exact rule id in the board, the most
specific matching glob (most literal characters), the rule's own
`metadata["dev.semgrep.actions"]`, then the board's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from forge_app.core.models import MODES

_GLOB_CHARS = set("*?[")


class PolicyError(ValueError):
    """A policy document that cannot be applied; the message says which entry and why."""


@dataclass(frozen=True)
class Policy:
    default: str = "comment"
    rules: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, "rules": dict(sorted(self.rules.items()))}


def parse_policy(doc: Any) -> Policy:
    """Validate a `PUT /api/v1/policies` body."""
    if not isinstance(doc, dict):
        raise PolicyError('the policy must be a JSON object like {"default": "comment", "rules": {}}')
    unknown = set(doc) - {"default", "rules"}
    if unknown:
        raise PolicyError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    default = doc.get("default", "comment")
    if default not in MODES:
        raise PolicyError(f"default must be one of {', '.join(MODES)}, not {default!r}")
    rules = doc.get("rules", {})
    if not isinstance(rules, dict):
        raise PolicyError("rules must be an object mapping a rule id or glob to a mode")
    for pattern, mode in rules.items():
        if not pattern or len(pattern) > 512:
            raise PolicyError("a rule pattern must be 1 to 512 characters")
        if mode not in MODES:
            raise PolicyError(f"rule {pattern!r}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    return Policy(default=default, rules=dict(rules))


def _specificity(pattern: str) -> tuple[int, str]:
    return (sum(1 for c in pattern if c not in _GLOB_CHARS), pattern)


def _from_metadata(metadata: Mapping[str, Any]) -> str | None:
    actions = metadata.get("dev.semgrep.actions")
    if not isinstance(actions, list):
        return None
    if "block" in actions:
        return "block"
    if "comment" in actions:
        return "comment"
    return "monitor"


def mode_for(rule_id: str, metadata: Mapping[str, Any], policy: Policy) -> str:
    exact = policy.rules.get(rule_id)
    if exact is not None:
        return exact
    globs = [p for p in policy.rules if _GLOB_CHARS & set(p) and fnmatchcase(rule_id, p)]
    if globs:
        return policy.rules[max(globs, key=_specificity)]
    return _from_metadata(metadata) or policy.default

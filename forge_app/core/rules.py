"""Semgrep rule files: validated before they are served to `semgrep ci`, and decorated with the
rule board's verdict so the CLI's own exit code follows forge-app's policies.

Pure: callers pass the text and the policy. The checks are the ones Semgrep itself applies when
it loads a config (YAML syntax, a `rules` list, each rule's id, message, severity, languages and
exactly one way of matching); a file that fails them would make every `semgrep ci` run fail, so
it is refused with the reason instead of being served.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from forge_app.core.policy import Policy, mode_for

ACTIONS_KEY = "dev.semgrep.actions"
ACTIONS: dict[str, list[str]] = {"monitor": [], "comment": ["comment"], "block": ["block"]}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_RULE_FILE_BYTES = 2 * 1024 * 1024

SEVERITIES = frozenset({"ERROR", "WARNING", "INFO", "INVENTORY", "EXPERIMENT", "CRITICAL", "HIGH", "MEDIUM", "LOW"})
# Semgrep 1.182.0's language names and aliases (semgrep_interfaces/lang.json).
LANGUAGES = frozenset({
    "aliengrep", "apex", "bash", "c", "c#", "c++", "cairo", "circom", "clojure", "cpp", "csharp", "dart", "docker",
    "dockerfile", "elixir", "ex", "fga", "generic", "go", "golang", "gosu", "hack", "hcl", "html", "java",
    "javascript", "js", "json", "jsonnet", "julia", "kotlin", "kt", "lisp", "lua", "move_on_aptos", "move_on_sui",
    "none", "objc", "objective-c", "objectivec", "ocaml", "openfga", "php", "powershell", "promql", "proto",
    "proto3", "protobuf", "py", "python", "python2", "python3", "r", "regex", "ruby", "rust", "scala", "scheme",
    "sh", "sol", "solidity", "spacegrep", "swift", "terraform", "tf", "ts", "typescript", "vue", "xml", "yaml",
})
SEARCH_KEYS = ("pattern", "patterns", "pattern-either", "pattern-regex", "match")
# Operators allowed inside `patterns` / `pattern-either` (old syntax).
OPERATORS = frozenset({
    "pattern", "patterns", "pattern-either", "pattern-regex", "pattern-not-regex", "pattern-not", "pattern-inside",
    "pattern-not-inside", "metavariable-regex", "metavariable-pattern", "metavariable-comparison",
    "metavariable-analysis", "metavariable-type", "metavariable-name", "focus-metavariable", "pattern-where-python",
})
MODES = frozenset({"search", "taint", "join", "extract", "steps"})


class RuleFileError(ValueError):
    """A rule file Semgrep would refuse; the message says where and why."""


@dataclass(frozen=True)
class RuleFile:
    name: str
    source: str  # "file" (FORGE_APP_RULES) or "api" (PUT /api/v1/rules/{name})
    rules: tuple[dict[str, Any], ...]
    text: str

    @property
    def rule_ids(self) -> list[str]:
        return [r["id"] for r in self.rules]


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise RuleFileError("a rule file name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter "
                            "or digit (e.g. python-security.yml)")
    return name


def parse_rule_file(text: str, *, name: str = "rules") -> list[dict[str, Any]]:
    """The rules of a YAML (or JSON) rule file; RuleFileError saying what Semgrep would refuse."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RULE_FILE_BYTES:
        raise RuleFileError(f"{name}: larger than {MAX_RULE_FILE_BYTES // (1024 * 1024)} MB")
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleFileError(f"{name}: invalid YAML{where}: {exc.problem or exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise RuleFileError(f"{name}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict) or "rules" not in doc:
        raise RuleFileError(f"{name}: a Semgrep rule file is a mapping with a top-level 'rules' list")
    rules = doc["rules"]
    if not isinstance(rules, list) or not rules:
        raise RuleFileError(f"{name}: 'rules' must be a non-empty list")
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        _check_rule(rule, f"{name}: rules[{i}]")
        if rule["id"] in seen:
            raise RuleFileError(f"{name}: rules[{i}]: the rule id {rule['id']!r} appears twice in this file")
        seen.add(rule["id"])
    return rules


def _check_rule(rule: Any, where: str) -> None:
    if not isinstance(rule, dict):
        raise RuleFileError(f"{where}: a rule must be a mapping")
    rule_id = rule.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleFileError(f"{where}: missing 'id' (a non-empty string)")
    where = f"{where} ({rule_id})"
    if any(c.isspace() for c in rule_id) or len(rule_id) > 512:
        raise RuleFileError(f"{where}: a rule id has no spaces and at most 512 characters")
    mode = rule.get("mode", "search")
    if mode not in MODES:
        raise RuleFileError(f"{where}: unknown mode {mode!r}; one of {', '.join(sorted(MODES))}")
    if mode != "extract":
        if not isinstance(rule.get("message"), str) or not rule["message"].strip():
            raise RuleFileError(f"{where}: missing 'message' (a non-empty string)")
        severity = rule.get("severity")
        if not isinstance(severity, str) or severity.upper() not in SEVERITIES:
            raise RuleFileError(f"{where}: 'severity' must be one of {', '.join(sorted(SEVERITIES))}, "
                                f"not {severity!r}")
    languages = rule.get("languages")
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        raise RuleFileError(f"{where}: 'languages' must be a non-empty list of language names")
    unknown = [x for x in languages if x.lower() not in LANGUAGES]
    if unknown:
        raise RuleFileError(f"{where}: unknown language(s) {', '.join(map(repr, unknown))}")
    if mode == "search":
        present = [k for k in SEARCH_KEYS if k in rule]
        if len(present) != 1:
            found = f"found {', '.join(present)}" if present else "found none"
            raise RuleFileError(f"{where}: a search rule needs exactly one of {', '.join(SEARCH_KEYS)} ({found})")
        _check_formula(present[0], rule[present[0]], where)
    elif mode == "taint" and "taint" not in rule and not ("pattern-sources" in rule and "pattern-sinks" in rule):
        raise RuleFileError(f"{where}: a taint rule needs 'pattern-sources' and 'pattern-sinks' (or 'taint')")
    for key, kind in (("metadata", dict), ("paths", dict), ("options", dict), ("fix-regex", dict)):
        if key in rule and not isinstance(rule[key], kind):
            raise RuleFileError(f"{where}: '{key}' must be a mapping")
    if "fix" in rule and not isinstance(rule["fix"], str):
        raise RuleFileError(f"{where}: 'fix' must be a string")
    paths = rule.get("paths") or {}
    for key in ("include", "exclude"):
        if key in paths and not (isinstance(paths[key], list) and all(isinstance(p, str) for p in paths[key])):
            raise RuleFileError(f"{where}: 'paths.{key}' must be a list of glob strings")


def _check_formula(key: str, value: Any, where: str) -> None:
    """The operators Semgrep's old syntax allows, recursively; the new `match` syntax only has to be present."""
    if key in ("pattern", "pattern-regex", "pattern-not", "pattern-inside", "pattern-not-inside",
               "pattern-not-regex"):
        if not isinstance(value, str) or not value.strip():
            raise RuleFileError(f"{where}: '{key}' must be a non-empty string")
        return
    if key in ("patterns", "pattern-either"):
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{where}: '{key}' must be a non-empty list")
        for i, item in enumerate(value):
            if not isinstance(item, dict) or len(item) != 1:
                raise RuleFileError(f"{where}: {key}[{i}] must be a mapping with exactly one operator")
            (op, inner), = item.items()
            if op not in OPERATORS:
                raise RuleFileError(f"{where}: {key}[{i}]: unknown operator {op!r}")
            _check_formula(op, inner, f"{where}: {key}[{i}]")
        return
    if key == "match" and value in (None, "", [], {}):
        raise RuleFileError(f"{where}: 'match' must not be empty")


def actions_for(mode: str) -> list[str]:
    return list(ACTIONS[mode])


def served_rules(files: Iterable[RuleFile], policy: Policy, *, block_allowed: bool = True) -> list[dict[str, Any]]:
    """Every rule once (first file wins on a repeated id), with `metadata["dev.semgrep.actions"]` from the
    rule board, so the CLI blocks exactly on the rules forge-app blocks on. `block_allowed=False` (a
    Marketplace plan without blocking, or an account not served) serves block rules as comment rules."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rule_file in files:
        for rule in rule_file.rules:
            if rule["id"] in seen:
                continue
            seen.add(rule["id"])
            served = copy.deepcopy(rule)
            raw_metadata = served.get("metadata")
            metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
            mode = mode_for(rule["id"], metadata, policy)
            metadata[ACTIONS_KEY] = actions_for("comment" if mode == "block" and not block_allowed else mode)
            served["metadata"] = metadata
            out.append(served)
    return out


def duplicate_ids(new: RuleFile, others: Iterable[RuleFile]) -> dict[str, str]:
    """Rule ids of `new` that another file already serves: id -> that file's name."""
    taken: dict[str, str] = {}
    for other in others:
        if other.name == new.name and other.source == new.source:
            continue
        for rule_id in other.rule_ids:
            taken.setdefault(rule_id, other.name)
    return {rid: taken[rid] for rid in new.rule_ids if rid in taken}


def describe(rule_file: RuleFile) -> Mapping[str, Any]:
    return {"name": rule_file.name, "source": rule_file.source, "rules": rule_file.rule_ids}

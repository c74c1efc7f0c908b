"""Checking an integration sent to the admin API, field by field, with errors a person can act on.

Pure: the network checks (SSRF, SMTP configured) happen in the route, after this.
POST and PATCH share the rules: a PATCH is merged over the stored integration and
the result validated as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from forge_app.core.models import MODES
from forge_app.notify.mail import MAX_ADDRESSES, is_address
from forge_app.notify.signing import InvalidSecret, secret_key
from forge_app.notify.ssrf import TargetRefused, parse_target

TYPES = ("webhook", "slack", "email")
EVENTS = ("findings", "scan")
NAME_MAX = 100
URL_MAX = 2048
PATTERN_MAX = 255
PATTERNS_MAX = 100

COMMON_FIELDS = ("type", "name", "enabled", "filters")
TYPE_FIELDS = {"webhook": ("url", "secret", "events"), "slack": ("url",), "email": ("addresses",)}
READ_ONLY_FIELDS = ("id", "has_secret", "created_at", "updated_at")  # tolerated, so a GET body can be sent back

SecretAction = Literal["keep", "generate", "remove", "set"]


class InvalidIntegration(ValueError):
    def __init__(self, detail: str, code: str = "invalid_integration") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class IntegrationDraft:
    """A complete, valid integration, not yet stored; `secret` only when action is "set"."""

    type: str
    name: str
    enabled: bool
    filters: dict[str, list[str]]
    config: dict[str, Any]
    secret_action: SecretAction = "keep"
    secret: str | None = field(default=None, repr=False)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidIntegration("name must be a non-empty string")
    name = " ".join(value.split())
    if len(name) > NAME_MAX:
        raise InvalidIntegration(f"name must be at most {NAME_MAX} characters")
    return name


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidIntegration(f"{key} must be true or false")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidIntegration("url is required: the http(s) URL to POST to")
    if len(value) > URL_MAX:
        raise InvalidIntegration(f"url must be at most {URL_MAX} characters")
    try:
        parse_target(value)
    except TargetRefused as exc:
        raise InvalidIntegration(f"url is not usable: {exc}", "invalid_url") from None
    return value


def _addresses(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidIntegration("addresses must be a list of one or more email addresses")
    if len(value) > MAX_ADDRESSES:
        raise InvalidIntegration(f"addresses takes at most {MAX_ADDRESSES} email addresses")
    out: list[str] = []
    for i, address in enumerate(value):
        if not isinstance(address, str) or not is_address(address.strip()):
            raise InvalidIntegration(f"addresses[{i}] is not an email address (name@example.com)")
        if address.strip().lower() not in (a.lower() for a in out):
            out.append(address.strip())
    return out


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise InvalidIntegration(f"events must be a non-empty list of: {', '.join(EVENTS)}")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        raise InvalidIntegration(f"unknown event(s) {', '.join(unknown)}; events are: {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in value]


def _filters(value: Any, current: dict[str, list[str]]) -> dict[str, list[str]]:
    """Merged per key: PATCH {"filters": {"policies": [...]}} keeps the repositories."""
    if not isinstance(value, dict):
        raise InvalidIntegration('filters must be an object like {"repositories": ["octo/*"], "policies": ["block"]}')
    unknown = sorted(set(value) - {"repositories", "policies"})
    if unknown:
        raise InvalidIntegration(f"unknown filter(s) {', '.join(unknown)}; filters are repositories and policies")
    out = dict(current)
    if "repositories" in value:
        repos = value["repositories"]
        if repos is None:
            repos = []
        if not isinstance(repos, list) or not all(isinstance(r, str) and r.strip() for r in repos):
            raise InvalidIntegration("filters.repositories must be a list of repository names or globs "
                                     "(e.g. octo/demo, octo/*); an empty list means all repositories")
        if len(repos) > PATTERNS_MAX or any(len(r) > PATTERN_MAX for r in repos):
            raise InvalidIntegration(f"filters.repositories takes at most {PATTERNS_MAX} patterns "
                                     f"of at most {PATTERN_MAX} characters")
        out["repositories"] = list(dict.fromkeys(r.strip() for r in repos))
    if "policies" in value:
        policies = value["policies"]
        if policies is None:
            policies = list(MODES)
        if not isinstance(policies, list) or not policies or not all(isinstance(p, str) for p in policies):
            raise InvalidIntegration(f"filters.policies must list one or more of {', '.join(MODES)} "
                                     "(leave it out for all)")
        unknown_modes = sorted(set(policies) - set(MODES))
        if unknown_modes:
            raise InvalidIntegration(f"unknown policy mode(s) {', '.join(unknown_modes)}; "
                                     f"modes are {', '.join(MODES)}")
        out["policies"] = [m for m in MODES if m in policies]
    return out


def _secret(value: Any) -> tuple[SecretAction, str | None]:
    if value is True:
        return "generate", None
    if value is None or value is False:
        return "remove", None
    if isinstance(value, str):
        try:
            secret_key(value)
        except InvalidSecret as exc:
            raise InvalidIntegration(f"secret is not a Standard Webhooks secret: {exc} "
                                     '(or send "secret": true to have one generated)', "invalid_secret") from None
        return "set", value
    raise InvalidIntegration('secret must be a "whsec_..." string, true (generate one) or null (no signing)',
                             "invalid_secret")


def _check_fields(doc: dict[str, Any], type_: str) -> None:
    allowed = set(COMMON_FIELDS) | set(TYPE_FIELDS[type_]) | set(READ_ONLY_FIELDS)
    unknown = sorted(set(doc) - allowed)
    if unknown:
        takes = ", ".join((*COMMON_FIELDS[1:], *TYPE_FIELDS[type_]))
        raise InvalidIntegration(f"unknown field(s) for a {type_} integration: {', '.join(unknown)}; "
                                 f"it takes {takes}")


def _default_name(type_: str, config: dict[str, Any]) -> str:
    if "url" in config:
        try:
            return f"{type_} to {parse_target(config['url'])[1]}"[:NAME_MAX]
        except TargetRefused:
            pass
    if config.get("addresses"):
        return f"email to {config['addresses'][0]}"[:NAME_MAX]
    return type_


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidIntegration('the body must be a JSON object like {"type": "webhook", "url": "https://..."}')
    return doc


def parse_new(doc: Any) -> IntegrationDraft:
    """A POST body. Unset: enabled true, all repositories and policies, both webhook events,
    and no webhook secret (unsigned requests); signing is opt-in with `"secret": true`
    (generated, returned once) or `"secret": "whsec_..."`."""
    doc = _object(doc)
    type_ = doc.get("type")
    if type_ not in TYPES:
        raise InvalidIntegration(f"type must be one of {', '.join(TYPES)}")
    _check_fields(doc, type_)
    config: dict[str, Any] = {}
    secret_action: SecretAction = "keep"
    secret = None
    if type_ in ("webhook", "slack"):
        config["url"] = _url(doc.get("url"))
    else:
        config["addresses"] = _addresses(doc.get("addresses"))
    if type_ == "webhook":
        config["events"] = _events(doc["events"]) if "events" in doc else list(EVENTS)
        secret_action, secret = _secret(doc["secret"]) if "secret" in doc else ("keep", None)
        if secret_action == "remove":
            secret_action = "keep"  # null/false on POST: an unsigned webhook, nothing to remove
    filters = _filters(doc.get("filters") or {}, {"repositories": [], "policies": list(MODES)})
    name = _name(doc["name"]) if doc.get("name") is not None else _default_name(type_, config)
    enabled = _bool(doc["enabled"], "enabled") if "enabled" in doc else True
    return IntegrationDraft(type_, name, enabled, filters, config, secret_action, secret)


def parse_patch(doc: Any, current_type: str, current_name: str, current_enabled: bool,
                current_filters: dict[str, list[str]], current_config: dict[str, Any]) -> IntegrationDraft:
    """A PATCH body merged over the stored integration; `type` cannot change."""
    doc = _object(doc)
    if "type" in doc and doc["type"] != current_type:
        raise InvalidIntegration("type cannot be changed: create a new integration instead")
    _check_fields(doc, current_type)
    config = dict(current_config)
    secret_action: SecretAction = "keep"
    secret = None
    if "url" in doc:
        config["url"] = _url(doc["url"])
    if "addresses" in doc:
        config["addresses"] = _addresses(doc["addresses"])
    if "events" in doc:
        config["events"] = _events(doc["events"])
    if "secret" in doc:
        secret_action, secret = _secret(doc["secret"])
    filters = _filters(doc["filters"], current_filters) if "filters" in doc else dict(current_filters)
    name = _name(doc["name"]) if "name" in doc else current_name
    enabled = _bool(doc["enabled"], "enabled") if "enabled" in doc else current_enabled
    return IntegrationDraft(current_type, name, enabled, filters, config, secret_action, secret)

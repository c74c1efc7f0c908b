"""Settings read from the environment, once, in one place.

Every CLI verb and the service read the same variables (see README.md), so
`forge-app token create` writes to the very database `serve` uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from forge_app.core.plans import PlanLimits, PlansError, parse_plans

DEFAULT_DATABASE = "./data/forge-app.db"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
DEFAULT_GITHUB_WEB_URL = "https://github.com"
DEFAULT_BITBUCKET_API_URL = "https://api.bitbucket.org/2.0"
DEFAULT_SLACK_API_URL = "https://slack.com/api"
DEFAULT_SLACK_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"

MB = 1024 * 1024


class ConfigError(ValueError):
    """A setting is present but unusable; the message names the variable, never its value."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None


def _plans(path: str | None) -> Mapping[str, PlanLimits] | None:
    """The Marketplace plans file, parsed once at start: a bad file stops the server with the reason."""
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"FORGE_APP_MARKETPLACE_PLANS cannot be read: {exc.strerror}") from None
    try:
        return parse_plans(text, "FORGE_APP_MARKETPLACE_PLANS")
    except PlansError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    database: str = DEFAULT_DATABASE
    secret_key: str | None = None
    admin_token: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    github_app_id: str | None = None
    github_private_key: str | None = None
    github_webhook_secret: str | None = None
    github_api_url: str = DEFAULT_GITHUB_API_URL
    github_web_url: str = DEFAULT_GITHUB_WEB_URL
    github_app_name: str = "forge-app"
    bitbucket_api_url: str = DEFAULT_BITBUCKET_API_URL
    allow_private_targets: bool = False
    smtp_url: str | None = None
    email_from: str | None = None
    max_body_bytes: int = 50 * MB
    max_inflated_bytes: int = 200 * MB
    log_level: str = "INFO"
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_authorize_url: str = DEFAULT_SLACK_AUTHORIZE_URL
    retention_days: int = 30
    max_inline_comments: int = 50
    log_format: str = "text"
    # GitHub Marketplace (docs: README "Listing on GitHub Marketplace"); no plans file = Marketplace off
    github_marketplace_webhook_secret: str | None = None
    github_client_id: str | None = None
    github_client_secret: str | None = None
    marketplace_plans: Mapping[str, PlanLimits] | None = None
    marketplace_url: str | None = None
    marketplace_stubbed: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        private_key = env.get("GITHUB_PRIVATE_KEY") or None
        key_path = env.get("GITHUB_PRIVATE_KEY_PATH")
        if not private_key and key_path:
            try:
                private_key = Path(key_path).read_text()
            except OSError as exc:
                raise ConfigError(f"GITHUB_PRIVATE_KEY_PATH cannot be read: {exc.strerror}") from None
        secret_key = env.get("FORGE_APP_SECRET_KEY") or None
        if secret_key is not None and len(secret_key) < 32:
            raise ConfigError(
                "FORGE_APP_SECRET_KEY must be at least 32 characters (try: openssl rand -base64 32)"
            )
        return cls(
            database=env.get("FORGE_APP_DATABASE") or DEFAULT_DATABASE,
            secret_key=secret_key,
            admin_token=env.get("FORGE_APP_ADMIN_TOKEN") or None,
            public_url=(env.get("FORGE_APP_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            github_app_id=env.get("GITHUB_APP_ID") or None,
            github_private_key=private_key,
            github_webhook_secret=env.get("GITHUB_WEBHOOK_SECRET") or None,
            github_api_url=(env.get("FORGE_APP_GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/"),
            github_web_url=(env.get("FORGE_APP_GITHUB_WEB_URL") or DEFAULT_GITHUB_WEB_URL).rstrip("/"),
            github_app_name=env.get("FORGE_APP_GITHUB_APP_NAME") or "forge-app",
            bitbucket_api_url=(env.get("FORGE_APP_BITBUCKET_API_URL") or DEFAULT_BITBUCKET_API_URL).rstrip("/"),
            allow_private_targets=_flag(env.get("FORGE_APP_ALLOW_PRIVATE_TARGETS")),
            smtp_url=env.get("FORGE_APP_SMTP_URL") or None,
            email_from=env.get("FORGE_APP_EMAIL_FROM") or None,
            max_body_bytes=_int(env, "FORGE_APP_MAX_BODY_MB", 50) * MB,
            max_inflated_bytes=_int(env, "FORGE_APP_MAX_INFLATED_MB", 200) * MB,
            log_level=(env.get("FORGE_APP_LOG_LEVEL") or "INFO").upper(),
            slack_client_id=env.get("SLACK_CLIENT_ID") or None,
            slack_client_secret=env.get("SLACK_CLIENT_SECRET") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_api_url=(env.get("FORGE_APP_SLACK_API_URL") or DEFAULT_SLACK_API_URL).rstrip("/"),
            slack_authorize_url=env.get("FORGE_APP_SLACK_AUTHORIZE_URL") or DEFAULT_SLACK_AUTHORIZE_URL,
            retention_days=_int(env, "FORGE_APP_RETENTION_DAYS", 30),
            max_inline_comments=_int(env, "FORGE_APP_MAX_INLINE_COMMENTS", 50),
            log_format=(env.get("FORGE_APP_LOG_FORMAT") or "text").strip().lower(),
            github_marketplace_webhook_secret=env.get("GITHUB_MARKETPLACE_WEBHOOK_SECRET") or None,
            github_client_id=env.get("GITHUB_CLIENT_ID") or None,
            github_client_secret=env.get("GITHUB_CLIENT_SECRET") or None,
            marketplace_plans=_plans(env.get("FORGE_APP_MARKETPLACE_PLANS")),
            marketplace_url=env.get("FORGE_APP_MARKETPLACE_URL") or None,
            marketplace_stubbed=_flag(env.get("FORGE_APP_MARKETPLACE_STUBBED")),
        )

    @property
    def marketplace(self) -> bool:
        """Plans configured: only accounts with an active plan are served."""
        return self.marketplace_plans is not None

    def missing_for_startup(self) -> list[str]:
        """Human hints logged at start-up for what is not configured yet (each forge adds its own)."""
        hints = []
        if not self.admin_token:
            hints.append("FORGE_APP_ADMIN_TOKEN is not set: "
                         "the admin API (/api/v1/policies, integrations, connections) is closed")
        if not self.secret_key:
            hints.append("FORGE_APP_SECRET_KEY is not set: "
                         "forge tokens and app keys cannot be stored (openssl rand -base64 32)")
        return hints

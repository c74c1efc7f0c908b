"""Registering the GitHub App from its manifest (GitHub's "manifest flow").

1. `/github/setup` posts the manifest (from app.yml, URLs filled in) with a one-time
   `state` to `{web}/settings/apps/new` (or an organization's);
2. GitHub creates the app and redirects to `/github/callback?code=...&state=...`;
3. we check the state, exchange the code at `POST /app-manifests/{code}/conversions`
   and keep the app id, slug, webhook secret and private key (secrets encrypted).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from gidgethub import HTTPException
from gidgethub.httpx import GitHubAPI

from forge_app import __version__
from forge_app.config import Settings
from forge_app.forges.github.credentials import load_credentials, save_registered_app
from forge_app.forges.github.http import API_VERSION_HEADERS, open_http
from storage import Storage

ORG_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
PAGE_CODE = "page"  # printed by `forge-app github setup`, opens /github/setup once
STATE_CODE = "state"  # round-trips through GitHub, used once; issued while no app was configured
LINKED_STATE_CODE = "state-link"  # the same, issued through a setup link (a deliberate re-registration)
STATE_TTL = 3600.0  # GitHub's manifest codes expire after an hour too
CODE_RE = re.compile(r"^[A-Za-z0-9_\-]{10,200}$")


class RegistrationError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def new_app_url(settings: Settings, org: str | None) -> str:
    if org:
        return f"{settings.github_web_url}/organizations/{org}/settings/apps/new"
    return f"{settings.github_web_url}/settings/apps/new"


def install_url(settings: Settings, slug: str) -> str:
    return f"{settings.github_web_url}/apps/{slug}/installations/new"


def check_org(org: str | None) -> str | None:
    if org in (None, ""):
        return None
    if not ORG_RE.match(org):
        raise RegistrationError(400, "invalid_org", "org must be a GitHub organization login (letters, digits, -)")
    return org


def app_configured(settings: Settings, storage: Storage) -> bool:
    return load_credentials(settings, storage).can_authenticate


def page_code(settings: Settings, storage: Storage, org: str | None) -> str:
    """A one-time link to /github/setup, valid for an hour (the CLI prints it)."""
    require_secret_key(settings)
    return storage.create_github_setup_code(PAGE_CODE, org=check_org(org))


def require_secret_key(settings: Settings) -> None:
    if not settings.secret_key:
        raise RegistrationError(503, "secret_key_missing",
                                "FORGE_APP_SECRET_KEY is not set: the app's private key could not be stored. "
                                "Set it (openssl rand -base64 32), restart, and start the setup again")


def authorize_page(settings: Settings, storage: Storage, code: str | None) -> dict[str, Any] | None:
    """Who may open the setup page: anyone while no app is configured (first run), afterwards
    only the holder of a link from `forge-app github setup`, once. Returns that link's data."""
    require_secret_key(settings)
    if code:
        found = storage.check_github_setup_code(PAGE_CODE, code, consume=True) if CODE_RE.match(code) else None
        if found is None:
            raise RegistrationError(403, "invalid_setup_link",
                                    "this setup link is unknown, expired or already used: run "
                                    "`forge-app github setup` again")
        return {**found, "linked": True}
    if app_configured(settings, storage):
        raise RegistrationError(403, "already_configured",
                                "a GitHub App is already configured; to register another one, open the link "
                                "printed by `forge-app github setup`")
    return None


def start(settings: Settings, storage: Storage, org: str | None, *, linked: bool = False) -> str:
    """A fresh single-use state for one trip to GitHub and back, valid for an hour. `linked`: the
    page was opened with a setup link, so the state may replace an app configured meanwhile."""
    return storage.create_github_setup_code(LINKED_STATE_CODE if linked else STATE_CODE, org=check_org(org),
                                            ttl=STATE_TTL)


def _consume_state(settings: Settings, storage: Storage, state: str) -> None:
    """Single use; and a state from the first-run page stops working once an app is configured
    (someone else finished first: their app must not be replaced by whoever comes second)."""
    if not state or not CODE_RE.match(state):
        raise _bad_state()
    if storage.check_github_setup_code(LINKED_STATE_CODE, state, consume=True) is not None:
        return
    if storage.check_github_setup_code(STATE_CODE, state, consume=True) is None:
        raise _bad_state()
    if app_configured(settings, storage):
        raise RegistrationError(409, "already_configured",
                                "a GitHub App was configured after this setup began; to replace it, open the link "
                                "printed by `forge-app github setup`")


def _bad_state() -> RegistrationError:
    return RegistrationError(400, "invalid_state",
                             "the setup state is unknown, expired or already used: start again at /github/setup")


async def finish(settings: Settings, storage: Storage, code: str, state: str) -> dict[str, Any]:
    """Check the state, exchange the code, store the app. Returns its public part."""
    require_secret_key(settings)
    await asyncio.to_thread(_consume_state, settings, storage, state)
    if not code or not re.fullmatch(r"[A-Za-z0-9_\-]{1,200}", code):
        raise RegistrationError(400, "invalid_code", "GitHub did not send a usable code")
    async with open_http() as http:
        gh = GitHubAPI(http, f"forge-app/{__version__}", base_url=settings.github_api_url)
        try:
            conversion = await gh.post("/app-manifests/{code}/conversions", {"code": code}, data=b"",
                                       extra_headers=dict(API_VERSION_HEADERS))
        except HTTPException as exc:
            raise RegistrationError(502, "github_refused",
                                    f"GitHub refused the app code ({int(exc.status_code)}); codes expire after an "
                                    "hour and work once: start again at /github/setup") from None
        except httpx.HTTPError as exc:
            raise RegistrationError(502, "github_unreachable",
                                    f"cannot reach GitHub at {settings.github_api_url}: {type(exc).__name__}") from None
    if not isinstance(conversion, dict) or not conversion.get("id") or not conversion.get("pem"):
        raise RegistrationError(502, "github_refused", "GitHub's answer lacked the app id or private key")
    return save_registered_app(settings, storage, conversion)

"""The Slack app in the console (Settings → Integrations → Slack app): "Add to Slack", the
installed workspaces with their status, "Refresh token" (= install again), "Remove integration",
and each workspace's subscriptions, read-only (channels manage them from Slack)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from forge_app.console.web import Form, PageError, action, int_param, page, render
from forge_app.slackapp import configured


async def slack_app_page(request: Request) -> Response:
    storage, settings = request.app.state.storage, request.app.state.settings
    subscriptions: dict[int, list] = {}
    for s in storage.slack_subscriptions():
        subscriptions.setdefault(s.installation_id, []).append(s)
    return render(request, "slack_app.html", configured=configured(settings), public_url=settings.public_url,
                  workspaces=storage.slack_installations(), subscriptions=subscriptions)


async def install(request: Request, form: Form) -> Response:
    from forge_app.slackapp.routes import authorize_url

    if not configured(request.app.state.settings):
        raise PageError(404, "Slack app not configured", "Set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and "
                        "SLACK_SIGNING_SECRET on the server first.")
    return RedirectResponse(authorize_url(request), status_code=303)


def _installation(request: Request):
    installation = request.app.state.storage.slack_installation(int_param(request, "installation_id"))
    if installation is None:
        raise PageError(404, "Not found", "There is no such Slack workspace installation.")
    return installation


async def remove_confirm(request: Request) -> Response:
    installation = _installation(request)
    return render(request, "confirm_delete.html", title="Remove integration",
                  what=f"forge-app's installation in {installation.team_name or installation.team_id} "
                       "(it is uninstalled from Slack) and its channel subscriptions",
                  action_url=f"/settings/slack-app/{installation.id}/delete", cancel_url="/settings/slack-app")


async def remove(request: Request, form: Form) -> Response:
    from forge_app.slackapp.routes import uninstall

    installation = _installation(request)
    await uninstall(request.app.state.settings, request.app.state.storage, installation)
    return RedirectResponse("/settings/slack-app?removed=1", status_code=303)


routes = [
    Route("/settings/slack-app", page(slack_app_page), methods=["GET"]),
    Route("/settings/slack-app/install", action(install), methods=["POST"]),
    Route("/settings/slack-app/{installation_id}/delete", page(remove_confirm), methods=["GET"]),
    Route("/settings/slack-app/{installation_id}/delete", action(remove), methods=["POST"]),
]

"""`forge-app slack manifest [--url URL]`: the Slack app manifest to paste at "Create an app →
From an app manifest" (JSON on stdout, notes on stderr)."""

from __future__ import annotations

import argparse
import json

from forge_app.cli.common import CliError, fail, load_settings, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slack_verb", metavar="ACTION")
    sub.required = True
    manifest = sub.add_parser("manifest", help="print the Slack app manifest (JSON)")
    manifest.add_argument("--url", help="the server's public URL Slack calls (default: FORGE_APP_PUBLIC_URL)")
    manifest.add_argument("--name", default="forge-app", help="the app's display name (default: forge-app)")


def run(args: argparse.Namespace) -> int:
    from forge_app.slackapp.manifest import app_manifest

    url = args.url
    if not url:
        try:
            url = load_settings("slack").public_url
        except CliError as exc:
            return fail("slack", str(exc))
    if not url.startswith(("https://", "http://")):
        return fail("slack", f"--url must start with https:// (Slack calls it), got {url!r}")
    if not url.startswith("https://"):
        note("note: Slack only accepts https:// request URLs; put the server behind TLS before creating the app.")
    note("Create the app at https://api.slack.com/apps → Create New App → From an app manifest, paste the JSON "
         "below, then set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET from its Basic Information.")
    print(json.dumps(app_manifest(url, args.name), indent=2))
    return 0

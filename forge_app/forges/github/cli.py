"""`forge-app github setup [--org ORG]`: the link that registers the GitHub App from app.yml.

Prints instructions (stderr) and, as the last line of stdout, a one-time link to this
server's /github/setup page, which posts the manifest to GitHub (manifest flow).
"""

from __future__ import annotations

import argparse
from urllib.parse import urlencode

from forge_app.cli.common import CliError, add_init_flag, fail, load_settings, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="github_verb", metavar="ACTION")
    sub.required = True
    about = ("Register forge-app as a GitHub App from its manifest (app.yml): prints the steps on stderr and, as the "
             "last line of stdout, a one-time link (valid for an hour) to this server's /github/setup page, which "
             "sends the manifest to GitHub. GitHub then returns to the server, which stores the app's id, key and "
             "webhook secret in its database. The console's Settings → Connections offers the same link.")
    setup = sub.add_parser("setup", help="register the GitHub App from app.yml (prints the link to open)",
                           description=about)
    setup.add_argument("--org", help="register the app under this organization (default: your account)")
    setup.add_argument("--public", action="store_true",
                       help="register a public App (anyone can install it; GitHub Marketplace lists only public Apps)")
    add_init_flag(setup)
    sync = sub.add_parser("marketplace-sync", help="reconcile Marketplace accounts with the listing's plans")
    sync.set_defaults(github_verb="marketplace-sync")
    add_init_flag(sync)


def run(args: argparse.Namespace) -> int:
    if args.github_verb == "marketplace-sync":
        from forge_app.forges.github.marketplace.cli import marketplace_sync

        return marketplace_sync(args)
    from forge_app.forges.github import registration
    from storage import open_storage

    try:
        settings = load_settings("github", expect_database=True, init=getattr(args, "init", False))
    except CliError as exc:
        return fail("github", str(exc))
    storage = open_storage(settings.database)
    try:
        code = registration.page_code(settings, storage, args.org)
        configured = registration.app_configured(settings, storage)
    except registration.RegistrationError as exc:
        return fail("github", exc.detail)
    finally:
        storage.close()
    query = {"token": code, **({"org": args.org} if args.org else {}),
             **({"public": "1"} if getattr(args, "public", False) else {})}
    url = f"{settings.public_url}/github/setup?{urlencode(query)}"
    target = f"organization {args.org}" if args.org else "your GitHub account"
    note(f"Register forge-app as a GitHub App owned by {target} on {settings.github_web_url}:")
    note("  1. Make sure `forge-app serve` runs and that GitHub can reach "
         f"{settings.public_url}/webhooks/github (FORGE_APP_PUBLIC_URL).")
    note("  2. Open the link below in a browser signed in to GitHub (valid for one hour); it sends app.yml to "
         "GitHub. Pick a unique name and click 'Create GitHub App'.")
    note("  3. GitHub returns to this server, which stores the app id, webhook secret and private key "
         "(encrypted with FORGE_APP_SECRET_KEY), then offers the link to install the app.")
    if settings.github_api_url != "https://api.github.com":
        note(f"  GitHub Enterprise Server: API {settings.github_api_url}, web {settings.github_web_url}.")
    if configured:
        note("A GitHub App is already configured; registering another one replaces the stored one "
             "(environment variables GITHUB_APP_ID etc. still win when set).")
    print(url)
    return 0

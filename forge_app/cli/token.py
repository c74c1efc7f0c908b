"""`forge-app token create --repo R [--forge F]`: mint an upload token bound to one repository."""

from __future__ import annotations

import argparse
import re

from forge_app.cli.common import CliError, add_init_flag, fail, load_settings, note
from forge_app.forges.registry import names

REPO_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)+$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_verb", metavar="ACTION")
    sub.required = True
    about = ("Mint an upload token for one repository, for CI's `forge-app upload --token`. The token is printed "
             "once, alone on the last line of stdout; only its hash is stored, in the server's database "
             "(FORGE_APP_DATABASE, default ./data/forge-app.db: run this where the server runs).")
    create = sub.add_parser("create", help="mint an upload token for one repository (printed once)",
                            description=about)
    create.add_argument("--repo", required=True, help="owner/name (or group/subgroup/project)")
    create.add_argument("--forge", choices=names(), default=names()[0],
                        help="the forge hosting the repository (default: %(default)s)")
    add_init_flag(create)


def run(args: argparse.Namespace) -> int:
    from storage import open_storage

    if not REPO_RE.match(args.repo):
        return fail("token", f"--repo must look like owner/name, not {args.repo!r}")
    try:
        settings = load_settings("token", expect_database=True, init=getattr(args, "init", False))
    except CliError as exc:
        return fail("token", str(exc))
    storage = open_storage(settings.database)
    token = storage.create_upload_token(args.forge, args.repo)
    storage.close()
    note(f"Upload token for {args.forge} repository {args.repo} (shown once; only its hash is stored).")
    note("Store it as a CI secret, e.g. FORGE_APP_TOKEN, and pass it to `forge-app upload --token`.")
    print(token)
    return 0

"""`forge-app serve`: the HTTP service with its in-process job worker."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace

from forge_app.cli.common import CliError, database_label, fail, load_settings
from forge_app.config import Settings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--no-worker", action="store_true", help="do not run the job worker in this process")


def first_steps(settings: Settings) -> list[str]:
    """What a newcomer does next, logged at start-up: the console, then a token and an upload."""
    console = f"{settings.public_url}/"
    lines = [f"console: open {console} and sign in with FORGE_APP_ADMIN_TOKEN" if settings.admin_token else
             f"console: {console} is closed until FORGE_APP_ADMIN_TOKEN is set (e.g. openssl rand -base64 32)"]
    lines.append("next: mint an upload token for a repository with `forge-app token create --repo OWNER/NAME` "
                 "(run here, same FORGE_APP_DATABASE), then in CI after Semgrep: `forge-app upload semgrep.json "
                 f"--server {settings.public_url} --token $FORGE_APP_TOKEN`; its scans appear under Projects")
    return lines


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from forge_app.logging_setup import RedactingFilter
    from forge_app.services.rules import install_sighup_reload
    from forge_app.web.app import create_app

    try:
        settings = load_settings("serve")
    except CliError as exc:
        return fail("serve", str(exc))
    if not os.environ.get("FORGE_APP_PUBLIC_URL"):
        # Links in comments, checks and notifications must reach this server: without an explicit
        # public URL, the address it listens on is the best guess.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        settings = replace(settings, public_url=f"http://{host}:{args.port}")
    app = create_app(settings, run_worker=not args.no_worker)
    log.info("forge-app listening on http://%s:%s (database %s)", args.host, args.port,
             database_label(settings.database))
    for line in first_steps(settings):
        log.info("%s", line)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=settings.log_level.lower(),
                            proxy_headers=True, server_header=False)
    server = uvicorn.Server(config)
    install_sighup_reload(app.state)  # FORGE_APP_RULES read now, and again on `kill -HUP`
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactingFilter())
    if settings.log_format == "json":
        from forge_app.json_logs import use_json_logs

        use_json_logs()  # after uvicorn.Config, which installs its own handlers
    server.run()
    return 0

"""`forge-app`: one entry point, one module per verb (forge_app/cli/<verb>.py)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from forge_app import __version__

# verb -> (module, help)
VERBS: dict[str, tuple[str, str]] = {
    "serve": ("forge_app.cli.serve", "run the HTTP service with its job worker"),
    "worker": ("forge_app.cli.worker", "run the job worker alone"),
    "upload": ("forge_app.cli.upload", "upload Semgrep JSON or SARIF results from CI"),
    "diff": ("forge_app.cli.diff", "offline: classify head findings against base findings"),
    "token": ("forge_app.cli.token", "manage upload tokens (token create)"),
    "slack": ("forge_app.cli.slack", "Slack app helpers (manifest)"),
}


def _verbs() -> dict[str, tuple[str, str]]:
    """The verbs above, then each forge's own (an app's setup helpers), in registry order."""
    from forge_app.forges.registry import FORGES

    verbs = dict(VERBS)
    for forge in FORGES.values():
        verbs.update(forge.cli_verbs)
    return verbs


def build_parser() -> argparse.ArgumentParser:
    from forge_app.forges.registry import FORGES

    titles = [f.title for f in FORGES.values()]
    forges = ", ".join(titles[:-1]) + f" and {titles[-1]}" if len(titles) > 1 else "".join(titles)
    parser = argparse.ArgumentParser(prog="forge-app", description=f"Code-scanning review app for {forges}.")
    parser.add_argument("--version", action="version", version=f"forge-app {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (module_name, help_text) in _verbs().items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        p = sub.add_parser(verb, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`forge-app migrate-data --from sqlite:///path --to postgresql://...`: move an installation.

Every table is copied as it is (storage/transfer.py), so stored secrets stay encrypted as they
were: the processes on the new database need the key that encrypted them. That is
FORGE_APP_SECRET_KEY when it was set, else the `secret.key` generated beside the SQLite file;
this verb checks which of the two opens the stored secrets and says what to set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from forge_app.cli.common import CliError, fail, note
from forge_app.config import Settings
from forge_app.logging_setup import configure_logging
from forge_app.security.local_key import KEY_FILE

VERB = "migrate-data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="URL",
                        help="the installation's SQLite database: sqlite:///absolute/path.db (or a plain path)")
    parser.add_argument("--to", dest="target", required=True, metavar="URL",
                        help="the new database: postgresql://user:pass@host:5432/db")


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/path.db`, `sqlite:relative.db` or a plain path -> the file (which must exist)."""
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise CliError(f"--from {url!r}: a SQLite URL names a local file (sqlite:///path/to/forge-app.db)")
        raw = unquote(parts.path if url.startswith("sqlite://") else url[len("sqlite:"):])
    elif "://" in url:
        raise CliError(f"--from must be a SQLite database (sqlite:///path/to/forge-app.db), not {url.split(':')[0]}")
    else:
        raw = url
    path = Path(raw).expanduser()
    if not raw or not path.is_file():
        raise CliError(f"--from: no SQLite database at {path}")
    return path


def _target_url(url: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        raise CliError("--to must be a PostgreSQL URL (postgresql://user:pass@host:5432/db)")
    return url


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _key_advice(settings: Settings, source_file: Path, samples: list[str]) -> str:
    """Which key opens the copied secrets, and what the new processes must be given."""
    from forge_app.security.crypto import SecretsUnavailable, decrypt

    local = source_file.resolve().parent / KEY_FILE
    local_key = local.read_text().strip() if local.is_file() else None
    candidates = [("FORGE_APP_SECRET_KEY", settings.secret_key), (str(local), local_key)]

    def opens(key: str | None) -> bool:
        if not key:
            return False
        try:
            for sample in samples:
                decrypt(key, sample)
        except SecretsUnavailable:
            return False
        return True

    if not samples:
        which = next((name for name, key in candidates if key), None)
        if which is None:
            return "No secret is stored yet; set FORGE_APP_SECRET_KEY for every process on the new database."
        setting = "FORGE_APP_SECRET_KEY as now" if which == "FORGE_APP_SECRET_KEY" else \
            f"FORGE_APP_SECRET_KEY=$(cat {which})"
        return f"No secret is stored yet. Give every process on the new database the key it had: {setting}."
    for name, key in candidates:
        if opens(key):
            if name == "FORGE_APP_SECRET_KEY":
                return "Stored secrets open with the current FORGE_APP_SECRET_KEY: give every process the same value."
            return (f"Stored secrets were encrypted with the generated key in {name}: set "
                    f"FORGE_APP_SECRET_KEY=$(cat {name}) for every serve and worker on the new database.")
    return ("WARNING: neither FORGE_APP_SECRET_KEY nor a secret.key beside the source opens the stored secrets: "
            "set FORGE_APP_SECRET_KEY to the key the old server used, or the new one cannot use them.")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        source_file = sqlite_path(args.source)
        target_url = _target_url(args.target)
    except CliError as exc:
        return fail(VERB, str(exc))
    except Exception as exc:  # ConfigError and the like: one line, exit 2
        return fail(VERB, str(exc))
    from storage import open_storage
    from storage.errors import is_unavailable
    from storage.transfer import TransferRefused, encrypted_samples, transfer

    note(f"forge-app {VERB}: from {source_file} to {_redacted(target_url)}")
    try:
        source = open_storage(str(source_file))
    except Exception as exc:
        return fail(VERB, f"cannot open {source_file}: {exc}")
    try:
        try:
            target = open_storage(target_url)
        except Exception as exc:
            reason = "it does not answer" if is_unavailable(exc) else type(exc).__name__
            return fail(VERB, f"cannot open {_redacted(target_url)} ({reason}): {str(exc).splitlines()[0][:200]}")
        try:
            report = transfer(source.database, target.database, source_label=str(source_file.resolve()),
                              progress=None)
        except TransferRefused as exc:
            return fail(VERB, f"refused: {exc}; nothing was written")
        finally:
            target.close()
        samples = encrypted_samples(source.database)
    finally:
        source.close()

    width = max(len(t.table) for t in report.tables) if report.tables else 5
    print(f"{'table':<{width}}  {'source':>8}  {'target':>8}  {'copied now':>10}")
    for t in report.tables:
        flag = "" if t.target_after >= t.source else "  MISSING ROWS"
        print(f"{t.table:<{width}}  {t.source:>8}  {t.target_after:>8}  {t.copied:>10}{flag}")
    total_source = sum(t.source for t in report.tables)
    total_target = sum(t.target_after for t in report.tables)
    print(f"{'total':<{width}}  {total_source:>8}  {total_target:>8}  {report.copied:>10}")
    if report.resumed and report.copied == 0:
        print("Nothing new to copy: the target already holds every row of this source.")
    elif report.resumed:
        print(f"Resumed an earlier copy of this source: {report.copied} new rows copied.")
    else:
        print(f"Copied {report.copied} rows in {len(report.tables)} tables.")
    print(_key_advice(settings, source_file, samples))
    if report.mismatched:
        names = ", ".join(t.table for t in report.mismatched)
        print(f"forge-app {VERB}: the target has fewer rows than the source in {names}", file=sys.stderr)
        return 1
    return 0

"""`forge-app worker`: the job worker alone, for running several processes on one database."""

from __future__ import annotations

import argparse
import asyncio
import signal

from forge_app.cli.common import CliError, add_init_flag, fail, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
    add_init_flag(parser)


def run(args: argparse.Namespace) -> int:
    from forge_app.jobs.registry import default_handlers
    from forge_app.jobs.worker import JobContext, Worker
    from storage import open_storage

    try:
        settings = load_settings("worker", expect_database=True, init=getattr(args, "init", False))
    except CliError as exc:
        return fail("worker", str(exc))
    if settings.log_format == "json":
        from forge_app.json_logs import use_json_logs

        use_json_logs()
    storage = open_storage(settings.database)
    worker = Worker(JobContext(storage=storage, settings=settings), default_handlers())

    async def main() -> None:
        if args.once:
            await worker.drain()
            return
        loop = asyncio.get_running_loop()
        # SIGTERM: the current job finishes (or, after a grace period, goes back to the queue).
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run_forever()

    asyncio.run(main())
    storage.close()
    return 0

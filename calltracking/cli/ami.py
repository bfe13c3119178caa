"""`calltracking ami`: run the AMI listener; `calltracking ami rebuild --since DATE`."""
from __future__ import annotations

import asyncio
import logging
import signal

import click

from calltracking.cli._common import pass_ctx


@click.group(invoke_without_command=True)
@click.pass_context
def ami(ctx):
    """Run the AMI listener (stops cleanly on SIGTERM / Ctrl-C)."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.obj
    app.config.require_ami_secret()
    logging.getLogger("calltracking").setLevel(app.config.log.level.upper())
    from ami_listener import run_ami

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
                pass
        await run_ami(app.config, app.sessionmaker, stop)

    asyncio.run(main())
    click.echo("AMI listener stopped", err=True)


@ami.command("rebuild")
@click.option("--since", required=True, help="YYYY-MM-DD or ISO date-time, in [general] timezone.")
@pass_ctx
def rebuild(app, since):
    """Re-derive calls from the stored AMI events of calls active since DATE."""
    from calltracking.callstore.store import CallStore
    from calltracking.db import write_sessionmaker
    from calltracking.entities import ServiceError, parse_when

    try:
        start = parse_when(since, app.config.general.timezone)
    except ServiceError as e:
        raise click.ClickException(str(e)) from None
    g = app.config.general
    store = CallStore(write_sessionmaker(app.engine), g.pbx_id, g.default_region,
                      g.first_call_window_days, app.config.asterisk.outbound_contexts)
    calls, events = store.rebuild(start)
    click.echo(f"rebuilt {calls} call(s) from {events} stored event(s)")

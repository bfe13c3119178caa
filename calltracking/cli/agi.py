"""`calltracking agi` (serve FastAGI) and `calltracking routes test` (what would a call get?)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import signal

import click

from calltracking.cli._common import pass_ctx, run_loop


@click.command("agi")
@click.option("--listen", default=None, metavar="HOST:PORT", help="Override [agi] listen.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Database threads, and on PostgreSQL the event loop's connections for "
                   "route's reads (more helps PostgreSQL over a network, not SQLite).")
@click.option("--processes", default=None, type=click.IntRange(1, 32),
              help="Server processes sharing the port (default: [agi] processes).")
@click.option("--reuse-port", is_flag=True, hidden=True,
              help="Share the port with other FastAGI processes (SO_REUSEPORT).")
@pass_ctx
def agi_serve(app, listen, workers, processes, reuse_port):
    """Serve the FastAGI hooks (route, promo, tag, lookup) until SIGTERM or Ctrl-C."""
    from agi.processes import Children, child_command
    from agi.server import run_agi

    cfg = app.config
    logging.getLogger().setLevel(cfg.log.level.upper())
    processes = processes or cfg.agi.processes
    children = None
    if processes > 1:
        reuse_port = True
        children = Children(child_command(app.config_path, app.overrides, workers, listen),
                            processes - 1)
    kwargs = {"workers": workers, "reuse_port": reuse_port}
    if listen:
        from calltracking.config.options import hostport

        try:
            kwargs["host"], kwargs["port"] = hostport(listen)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--listen") from None

    async def main():
        stop, ready = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(run_agi(cfg, app.sessionmaker, stop, ready, **kwargs))
        done, _ = await asyncio.wait({task, asyncio.create_task(ready.wait())},
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()                    # failed to start: raise the error
        host, port = kwargs.get("host", cfg.agi.listen[0]), kwargs.get("port", cfg.agi.listen[1])
        more = f", {processes} processes" if processes > 1 else ""
        click.echo(f"FastAGI listening on {host}:{port} (budget {cfg.agi.timeout_ms} ms{more})", err=True)
        if children is not None:
            kids = asyncio.create_task(children.run(stop))
            await asyncio.gather(task, kids)
        else:
            await task

    try:
        run_loop(main())
    except OSError as e:
        raise click.ClickException(f"cannot listen: {e}") from None


@click.group()
def routes():
    """Routing rules: try what a call would get."""


@routes.command("test")
@click.argument("did")
@click.option("--caller", default="", help="Caller number.")
@click.option("--forwarded-from", "forwarded", default="",
              help="The number that forwarded the call (as Asterisk's agi_rdnis).")
@click.option("--at", "at", default=None, help="When (ISO date-time in the project's time zone; "
              "default now).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def routes_test(app, did, caller, forwarded, at, fmt):
    """Show the CT_* variables a call to DID would get (dry run: nothing is written)."""
    from calltracking import entities as svc
    from calltracking import hooks

    env = hooks.HookEnv(app.config, app.sessionmaker, cache=hooks.HookCache(rules_ttl=0))
    if at:
        from calltracking.attribution.lookup import attribute

        with app.session() as s:
            project = attribute(s, did, dt.datetime.now(dt.timezone.utc), app.region).project
            tz = project.timezone if project else app.config.general.timezone
        try:
            when = svc.parse_when(at, tz)
        except svc.ServiceError as e:
            raise click.ClickException(str(e)) from None
        env.clock = lambda: when
    result = hooks.route(env, did, "", caller, write=False, rdnis=forwarded)
    result.pop("CT_CALL_ID", None)
    if fmt == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        for k, v in result.items():
            click.echo(f"{k:16} {v}")

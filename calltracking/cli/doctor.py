"""`calltracking doctor`."""
import click

from calltracking import doctor as doc
from calltracking.jobs import scheduler as _scheduler_checks  # noqa: F401  (registers job checks)
from agi import doctor as _agi_checks  # noqa: F401,E402  (FastAGI port, dialplan include)
from ami_listener import doctor as _ami_checks  # noqa: F401,E402  (AMI login, events, clock)
from calltracking.cli import cli, pass_ctx

MARK = {doc.OK: click.style("OK  ", fg="green"), doc.INFO: click.style("INFO", fg="blue"),
        doc.WARN: click.style("WARN", fg="yellow"), doc.FAIL: click.style("FAIL", fg="red")}


@cli.command()
@pass_ctx
def doctor(app):
    """Check configuration, database and services; print a fix for each problem."""
    from webui import doctor as _web_checks  # noqa: F401  (web UI, DNI server; here: Flask is heavy)

    results = doc.run_checks(app)
    for r in results:
        click.echo(f"{MARK[r.status]} {r.name}: {r.detail}")
        if r.fix and r.status != doc.OK:
            click.echo(f"     fix: {r.fix}")
    failed = sum(r.status == doc.FAIL for r in results)
    click.echo(f"{len(results)} checks, {failed} failed")
    raise SystemExit(1 if failed else 0)

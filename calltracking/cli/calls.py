"""`calltracking calls list`: the call-record contract, as table, JSON or CSV; `calls qualify`:
the target rules applied again to a date range."""
import click

from calltracking import entities as svc
from calltracking.calls import export
from calltracking.cli._common import UserErrors, pass_ctx


@click.group()
def calls():
    """Recorded calls."""


@calls.command("list")
@click.option("--from", "start", default=None, help="YYYY-MM-DD or ISO date-time (inclusive).")
@click.option("--to", "end", default=None, help="YYYY-MM-DD (inclusive day) or ISO date-time (exclusive).")
@click.option("--project", default=None)
@click.option("--tz", default=None, help="Time zone of --from/--to (default: the project's or [general] timezone).")
@click.option("--limit", type=int, default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@pass_ctx
def calls_list(app, start, end, project, tz, limit, fmt):
    """List calls with the fields of the call-record contract (times in UTC)."""
    with UserErrors(), app.session() as s:
        pid = None
        zone = tz or app.config.general.timezone
        if project:
            p = svc.get_project(s, project)
            pid, zone = p.id, tz or p.timezone
        a = svc.parse_when(start, zone) if start else None
        b = svc.parse_when(end, zone, end=True) if end else None
        rows = [export.call_to_dict(c, with_legs=fmt == "json")
                for c in export.query_calls(s, a, b, pid, limit)]
    click.echo(export.render(rows, fmt))


@calls.command("qualify")
@click.option("--since", required=True, help="YYYY-MM-DD or ISO date-time: calls that started then or later.")
@click.option("--until", default=None, help="YYYY-MM-DD (inclusive day) or ISO date-time (exclusive).")
@click.option("--project", default=None, help="Only this project (key).")
@click.option("--tz", default=None, help="Time zone of --since/--until (default: the project's or [general] timezone).")
@pass_ctx
def calls_qualify(app, since, until, project, tz):
    """Apply the target rules again to the finished calls of a date range (after changing the
    rules): is_target and the matching rule are recomputed, the rules' tags added (never removed)."""
    from calltracking.db import write_sessionmaker
    from calltracking.qualify import apply as qualify_apply

    with UserErrors():
        with app.session() as s:
            pid = None
            zone = tz or app.config.general.timezone
            if project:
                p = svc.get_project(s, project)
                pid, zone = p.id, tz or p.timezone
            a = svc.parse_when(since, zone)
            b = svc.parse_when(until, zone, end=True) if until else None
        summary = qualify_apply.reapply(write_sessionmaker(app.sessionmaker), a, b, pid)
    click.echo(summary.text())

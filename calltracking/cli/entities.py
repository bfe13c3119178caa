"""`projects|sources|campaigns|numbers|operators|users` sub-commands."""
from __future__ import annotations

import getpass
import json
import os
import sys

import click
from sqlalchemy import select

from calltracking import entities as svc
from calltracking import sources as auto_sources
from calltracking.attribution import numbers_csv
from calltracking.cli._common import FORMAT, UserErrors, out, pass_ctx
from calltracking.models import AuditLog, Campaign, NumberPool, Operator, Project, Source, TrackingNumber, User


# ------------------------------------------------------------------ projects
@click.group()
def projects():
    """Projects: a business with its own sources, numbers and time zone."""


@projects.command("add")
@click.argument("key")
@click.option("--name", default="")
@click.option("--timezone", default=None, help="IANA time zone (default [general] timezone).")
@click.option("--default-queue", default=None, help="Queue when no rule matches.")
@click.option("--default-number", default=None, help="Number shown when the pool is exhausted.")
@pass_ctx
def projects_add(app, key, name, timezone, default_queue, default_number):
    """Add a project with KEY (used in URLs, CSV files and dni.js)."""
    g = app.config.general
    with UserErrors(), app.session(write=True) as s:
        p = svc.add_project(s, key, name, timezone or g.timezone,
                            g.default_queue if default_queue is None else default_queue,
                            default_number, app.region)
        click.echo(f"project {p.key} added (id {p.id})")


@projects.command("list")
@FORMAT
@pass_ctx
def projects_list(app, fmt):
    with app.session() as s:
        rows = [{"id": p.id, "key": p.key, "name": p.name, "timezone": p.timezone,
                 "default_queue": p.default_queue, "default_number": p.default_number}
                for p in s.scalars(select(Project).order_by(Project.key))]
    out(rows, ("id", "key", "name", "timezone", "default_queue", "default_number"), fmt)


@projects.command("remove")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Also delete its sources, numbers and settings.")
@pass_ctx
def projects_remove(app, key, yes):
    """Remove a project (calls are kept, detached from it)."""
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_project(s, key)
        n = s.scalars(select(TrackingNumber).where(TrackingNumber.project_id == p.id)).first()
        if n is not None and not yes:
            raise click.ClickException(f"project {key!r} has tracking numbers; pass --yes to delete them too")
        s.delete(p)
    click.echo(f"project {key} removed")


# ------------------------------------------------------------------- sources
@click.group()
def sources():
    """Advertising sources (Google Ads, billboard, newspaper...)."""


@sources.command("add")
@click.argument("project")
@click.argument("name")
@click.option("--channel", type=click.Choice(svc.CHANNELS), default="other", show_default=True)
@click.option("--label", default="", help="Short label shown on the operator's phone.")
@pass_ctx
def sources_add(app, project, name, channel, label):
    with UserErrors(), app.session(write=True) as s:
        src = svc.add_source(s, svc.get_project(s, project), name, channel, label)
        click.echo(f"source {src.name!r} added (id {src.id})")


@sources.command("list")
@click.argument("project", required=False)
@FORMAT
@pass_ctx
def sources_list(app, project, fmt):
    with UserErrors(), app.session() as s:
        stmt = select(Source).order_by(Source.project_id, Source.name)
        if project:
            stmt = stmt.where(Source.project_id == svc.get_project(s, project).id)
        rows = [{"id": x.id, "project": x.project.key, "name": x.name, "channel": x.channel,
                 "label": x.short_label, "auto": x.auto} for x in s.scalars(stmt)]
    out(rows, ("id", "project", "name", "channel", "label", "auto"), fmt)


def _audit(s, action: str, source_id: int, details: dict) -> None:
    """The audit log row of a change made from the command line (user ``cli:<login>``)."""
    s.add(AuditLog(username=f"cli:{getpass.getuser()}", action=action, entity="sources",
                   entity_id=str(source_id), details=json.dumps(details, ensure_ascii=False, sort_keys=True)))


@sources.command("merge")
@click.argument("project")
@click.argument("name")
@click.argument("into")
@pass_ctx
def sources_merge(app, project, name, into):
    """Merge source NAME into source INTO: its calls, visits, campaigns, numbers, pools, promo
    codes, routing rules, spend and aliases move, NAME is deleted, and later visits tagged like
    NAME's go to INTO."""
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_project(s, project)
        target = svc.get_source(s, p, into)
        moved = auto_sources.merge(s, svc.get_source(s, p, name), target)
        _audit(s, "merge", target.id, moved)
    click.echo(f"source {name!r} merged into {into!r}: {moved['calls']} calls, {moved['visits']} visits moved")


@sources.command("rename")
@click.argument("project")
@click.argument("name")
@click.argument("new_name")
@pass_ctx
def sources_rename(app, project, name, new_name):
    """Rename a source; visits tagged with the old name still go to it."""
    with UserErrors(), app.session(write=True) as s:
        src = svc.get_source(s, svc.get_project(s, project), name)
        details = auto_sources.rename(s, src, new_name)
        _audit(s, "rename", src.id, details)
    click.echo(f"source {name!r} renamed to {details['to']!r}")


@sources.command("remove")
@click.argument("project")
@click.argument("name")
@pass_ctx
def sources_remove(app, project, name):
    """Remove a source; its numbers stay mapped to no source (calls keep ringing)."""
    with UserErrors(), app.session(write=True) as s:
        s.delete(svc.get_source(s, svc.get_project(s, project), name))
    click.echo(f"source {name!r} removed")


# ----------------------------------------------------------------- campaigns
@click.group()
def campaigns():
    """Campaigns within a source."""


@campaigns.command("add")
@click.argument("project")
@click.argument("source")
@click.argument("name")
@click.option("--utm-campaign", default="")
@pass_ctx
def campaigns_add(app, project, source, name, utm_campaign):
    with UserErrors(), app.session(write=True) as s:
        src = svc.get_source(s, svc.get_project(s, project), source)
        c = svc.add_campaign(s, src, name, utm_campaign)
        click.echo(f"campaign {c.name!r} added (id {c.id})")


@campaigns.command("list")
@click.argument("project", required=False)
@FORMAT
@pass_ctx
def campaigns_list(app, project, fmt):
    with UserErrors(), app.session() as s:
        stmt = select(Campaign).order_by(Campaign.source_id, Campaign.name)
        if project:
            stmt = stmt.where(Campaign.project_id == svc.get_project(s, project).id)
        rows = [{"id": c.id, "source": c.source.name, "name": c.name, "utm_campaign": c.utm_campaign}
                for c in s.scalars(stmt)]
    out(rows, ("id", "source", "name", "utm_campaign"), fmt)


@campaigns.command("remove")
@click.argument("project")
@click.argument("source")
@click.argument("name")
@pass_ctx
def campaigns_remove(app, project, source, name):
    with UserErrors(), app.session(write=True) as s:
        src = svc.get_source(s, svc.get_project(s, project), source)
        s.delete(svc.get_campaign(s, src, name))
    click.echo(f"campaign {name!r} removed")


# ------------------------------------------------------------------- numbers
@click.group()
def numbers():
    """Tracking numbers (DIDs): static per source, or members of a pool."""


@numbers.command("add")
@click.argument("project")
@click.argument("number")
@click.option("--source", default=None, help="Static mapping to this source.")
@click.option("--campaign", default=None)
@click.option("--pool", default=None, help="Member of this number pool (created if missing).")
@click.option("--description", default="")
@click.option("--no-callerid-prefix", is_flag=True, help="Do not prefix the caller-ID name.")
@click.option("--no-record", is_flag=True)
@pass_ctx
def numbers_add(app, project, number, source, campaign, pool, description, no_callerid_prefix, no_record):
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_project(s, project)
        src = svc.get_source(s, p, source) if source else None
        camp = svc.get_campaign(s, src, campaign) if campaign and src else None
        if campaign and not src:
            raise svc.ServiceError("--campaign needs --source")
        pl = None
        if pool:
            pl = s.scalars(select(NumberPool).where(NumberPool.project_id == p.id,
                                                    NumberPool.name == pool)).first()
            pl = pl or svc.add_pool(s, p, pool, source=src)
        tn = svc.add_number(s, p, number, app.region, src, camp, pl, description,
                            not no_callerid_prefix, not no_record)
        click.echo(f"number {tn.number} added ({tn.kind})")


@numbers.command("list")
@click.argument("project", required=False)
@click.option("--all", "show_all", is_flag=True, help="Include retired mappings.")
@FORMAT
@pass_ctx
def numbers_list(app, project, show_all, fmt):
    with UserErrors(), app.session() as s:
        stmt = select(TrackingNumber).order_by(TrackingNumber.number, TrackingNumber.id)
        if not show_all:
            stmt = stmt.where(TrackingNumber.active.is_(True))
        if project:
            stmt = stmt.where(TrackingNumber.project_id == svc.get_project(s, project).id)
        rows = [{"number": t.number, "project": t.project.key, "kind": t.kind,
                 "source": t.source.name if t.source else None,
                 "campaign": t.campaign.name if t.campaign else None,
                 "pool": t.pool.name if t.pool else None, "active": t.active,
                 "description": t.description} for t in s.scalars(stmt)]
    out(rows, ("number", "project", "kind", "source", "campaign", "pool", "active", "description"), fmt)


@numbers.command("remove")
@click.argument("number")
@pass_ctx
def numbers_remove(app, number):
    """Retire a number's mapping. Calls to it still ring (default queue)."""
    with UserErrors(), app.session(write=True) as s:
        tn = svc.retire_number(s, number, app.region)
    click.echo(f"number {tn.number} retired")


@numbers.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--project", default=None, help="Project for rows without a 'project' column.")
@pass_ctx
def numbers_import(app, file, project):
    """Import numbers from a CSV FILE: all rows or none.

    Columns: number, project, source, campaign, pool, description,
    callerid_prefix, record. Bad rows are listed with their line numbers.
    """
    raw = file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{file.name}: not UTF-8 text (byte {e.start})") from None
    total = text.count("\n")
    bar = None
    if total > 1000:
        bar = click.progressbar(length=total, label="checking and importing", file=sys.stderr)
        bar.__enter__()
    try:
        with app.session(write=True) as s:
            res = numbers_csv.import_numbers(s, text, app.region, project,
                                             progress=bar.update if bar else None)
    except numbers_csv.ImportFailed as e:
        if bar:
            bar.__exit__(None, None, None)
        for err in e.errors:
            click.echo(f"{file.name}: {err}", err=True)
        raise click.ClickException(str(e)) from None
    if bar:
        bar.__exit__(None, None, None)
    created = ", ".join(f"{v} {k}" for k, v in res.created.items() if v)
    click.echo(f"imported {res.imported} number(s)" + (f"; created {created}" if created else ""))


@numbers.command("export")
@click.argument("project", required=False)
@pass_ctx
def numbers_export(app, project):
    """Print the active numbers as CSV (the import format)."""
    with app.session() as s:
        click.echo(numbers_csv.export_numbers(s, project), nl=False)


# ----------------------------------------------------------------- operators
@click.group()
def operators():
    """Operators (queue members); also discovered by the AMI listener."""


@operators.command("add")
@click.argument("name")
@click.argument("interface")
@click.option("--member-name", default="", help="Queue member name (default: NAME).")
@click.option("--extension", default="")
@click.option("--queues", default="", help="Comma-separated queue names.")
@pass_ctx
def operators_add(app, name, interface, member_name, extension, queues):
    with UserErrors(), app.session(write=True) as s:
        op = svc.add_operator(s, name, interface, member_name, extension, queues)
        click.echo(f"operator {op.name!r} added (id {op.id})")


@operators.command("list")
@FORMAT
@pass_ctx
def operators_list(app, fmt):
    with app.session() as s:
        rows = [{"id": o.id, "name": o.name, "interface": o.interface, "member_name": o.member_name,
                 "extension": o.extension, "queues": o.queues, "active": o.active}
                for o in s.scalars(select(Operator).order_by(Operator.name))]
    out(rows, ("id", "name", "interface", "member_name", "extension", "queues", "active"), fmt)


@operators.command("remove")
@click.argument("interface")
@pass_ctx
def operators_remove(app, interface):
    with UserErrors(), app.session(write=True) as s:
        op = s.scalars(select(Operator).where(Operator.interface == interface)).first()
        if op is None:
            raise svc.ServiceError(f"operator with interface {interface!r} not found")
        s.delete(op)
    click.echo(f"operator {interface} removed")


# --------------------------------------------------------------------- users
@click.group()
def users():
    """Web UI users and their roles."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(svc.ROLES), required=True)
@click.option("--password", default=None, help="Default: $CALLTRACKING_PASSWORD, else asked.")
@click.option("--language", type=click.Choice(["en", "ru"]), default="en", show_default=True)
@click.option("--operator", "operator_iface", default=None, help="Link to the operator with this interface.")
@pass_ctx
def users_add(app, username, role, password, language, operator_iface):
    password = password or os.environ.get("CALLTRACKING_PASSWORD")
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with UserErrors(), app.session(write=True) as s:
        op = None
        if operator_iface:
            op = s.scalars(select(Operator).where(Operator.interface == operator_iface)).first()
            if op is None:
                raise svc.ServiceError(f"operator with interface {operator_iface!r} not found")
        u = svc.add_user(s, username, password, role, language, op)
        click.echo(f"user {u.username} added ({u.role})")


@users.command("list")
@FORMAT
@pass_ctx
def users_list(app, fmt):
    with app.session() as s:
        rows = [{"id": u.id, "username": u.username, "role": u.role, "language": u.language,
                 "active": u.active} for u in s.scalars(select(User).order_by(User.username))]
    out(rows, ("id", "username", "role", "language", "active"), fmt)


@users.command("remove")
@click.argument("username")
@pass_ctx
def users_remove(app, username):
    with UserErrors(), app.session(write=True) as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is None:
            raise svc.ServiceError(f"user {username!r} not found")
        s.delete(u)
    click.echo(f"user {username} removed")

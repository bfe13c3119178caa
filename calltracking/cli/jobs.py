"""`scheduler`, `jobs`, `notify`, `deliveries`, `recordings` and `spend` sub-commands."""
from __future__ import annotations

import json
import signal
import threading

import click
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.cli._common import FORMAT, UserErrors, out, pass_ctx
from calltracking.db import write_sessionmaker
from calltracking.enums import NotificationChannel, NotificationEvent
from calltracking.logsetup import setup_logging
from calltracking.models import AdSpend, Campaign, Delivery, NotificationRule, Project, Source


def _iso(t):
    return t.isoformat(timespec="seconds") if t else None


# ------------------------------------------------------------------ scheduler
@click.command()
@pass_ctx
def scheduler(app):
    """Run the scheduled jobs in the foreground (only one process may run them)."""
    from calltracking.jobs.scheduler import start_scheduler

    cfg = app.config
    setup_logging(cfg)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner = start_scheduler(cfg, app.sessionmaker)
    click.echo(f"scheduler running ({'active' if runner.is_leader else 'standby: another process runs the jobs'}); "
               f"jobs: {', '.join(runner.jobs)}", err=True)
    try:
        stop.wait()
    finally:
        runner.shutdown()


@click.group()
def jobs():
    """Scheduled jobs: last run and failures."""


@jobs.command("list")
@FORMAT
@pass_ctx
def jobs_list(app, fmt):
    from calltracking.jobs.scheduler import default_jobs, job_statuses

    with app.session() as s:
        st = {j.name: j for j in job_statuses(s)}
    rows = []
    for spec in default_jobs():
        j = st.get(spec.name)
        rows.append({"job": spec.name, "every_s": spec.seconds,
                     "last_run": _iso(j.last_started_at) if j else None,
                     "last_ok": _iso(j.last_ok_at) if j else None,
                     "runs": j.runs if j else 0, "failures": j.failures if j else 0,
                     "failing": bool(j and j.consecutive_failures),
                     "last": ((j.last_error or "").splitlines()[0] if j and j.consecutive_failures and j.last_error
                              else (j.last_result if j else "")) or ""})
    out(rows, ("job", "every_s", "last_run", "last_ok", "runs", "failures", "last"), fmt)


@jobs.command("run")
@click.argument("name")
@pass_ctx
def jobs_run(app, name):
    """Run job NAME once now, in the foreground (recorded like a scheduled run)."""
    from calltracking.jobs.scheduler import JobRunner

    runner = JobRunner(app.config, app.sessionmaker)
    if name not in runner.jobs:
        raise click.ClickException(f"unknown job {name!r} (jobs: {', '.join(runner.jobs)})")
    ok, result = runner.run_job(name, force=True)
    click.echo(result)
    if not ok:
        raise SystemExit(1)


# --------------------------------------------------------------------- notify
@click.group()
def notify():
    """Missed-call alerts, digests and integrations (notification rules)."""


@notify.command("add")
@click.argument("project")
@click.option("--channel", type=click.Choice([c.value for c in NotificationChannel]), required=True)
@click.option("--event", type=click.Choice([e.value for e in NotificationEvent]), required=True)
@click.option("--target", required=True, help="E-mail addresses, URL, phone numbers (sms), or GA4 measurement id.")
@click.option("--template", default="", help="Webhook body or SMS text template ($caller, $source, …).")
@click.option("--secret", default="", help="CRM: HMAC key; GA4: API secret.")
@click.option("--name", default="")
@click.option("--target-only", is_flag=True, help="call_finished: send only target calls (each when it becomes one).")
@pass_ctx
def notify_add(app, project, channel, event, target, template, secret, name, target_only):
    """Add a notification rule to PROJECT (the rules of a valid one: ``check_rule``)."""
    from calltracking.jobs import rules, transport

    try:
        target = rules.check_rule(channel, event, target, transport.target_policy(app.config),
                                  region=app.config.general.default_region)
    except rules.RuleRefused as e:
        raise click.ClickException(str(e))
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_project(s, project)
        r = NotificationRule(project_id=p.id, name=name or f"{channel} {event}", channel=channel, event=event,
                             target=target, body_template=template, secret=secret, enabled=True,
                             target_only=target_only and event == "call_finished")
        s.add(r)
        s.flush()
        click.echo(f"rule {r.id} added")


@notify.command("list")
@click.argument("project", required=False)
@FORMAT
@pass_ctx
def notify_list(app, project, fmt):
    with UserErrors(), app.session() as s:
        stmt = select(NotificationRule, Project.key).join(Project, Project.id == NotificationRule.project_id)
        if project:
            stmt = stmt.where(Project.key == project)
        rows = [{"id": r.id, "project": key, "name": r.name, "channel": r.channel, "event": r.event,
                 "target": r.target, "enabled": r.enabled, "secret": "set" if r.secret else "",
                 "target_only": r.target_only}
                for r, key in s.execute(stmt.order_by(NotificationRule.id))]
    out(rows, ("id", "project", "name", "channel", "event", "target", "enabled", "target_only", "secret"), fmt)


@notify.command("remove")
@click.argument("rule_id", type=int)
@pass_ctx
def notify_remove(app, rule_id):
    with app.session(write=True) as s:
        r = s.get(NotificationRule, rule_id)
        if r is None:
            raise click.ClickException(f"rule {rule_id} not found")
        s.delete(r)
    click.echo(f"rule {rule_id} removed")


@notify.command("test")
@click.argument("rule_id", type=int)
@pass_ctx
def notify_test(app, rule_id):
    """Send RULE_ID's message for the project's latest call (or a sample) right now."""
    from calltracking.jobs.rules import send_test

    try:
        ok, msg = send_test(app.config, write_sessionmaker(app.engine), rule_id)
    except ValueError as e:
        raise click.ClickException(str(e))
    click.echo(f"rule {rule_id}: {msg}")
    if not ok:
        raise SystemExit(1)


# ----------------------------------------------------------------- deliveries
@click.group()
def deliveries():
    """Outgoing mail and webhooks; the dead-letter list."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "dead", "all"]), default="dead", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True)
@FORMAT
@pass_ctx
def deliveries_list(app, status, limit, fmt):
    with app.session() as s:
        stmt = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if status != "all":
            stmt = stmt.where(Delivery.status == status)
        rows = [{"id": d.id, "channel": d.channel, "event": d.event, "status": d.status, "attempts": d.attempts,
                 "created": _iso(d.created_at), "next": _iso(d.next_attempt_at) if d.status == "pending" else None,
                 "target": d.target[:60], "error": (d.last_error or "")[:120]} for d in s.scalars(stmt)]
    out(rows, ("id", "channel", "event", "status", "attempts", "created", "next", "target", "error"), fmt)


@deliveries.command("retry")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all-dead", is_flag=True, help="Retry every dead delivery.")
@pass_ctx
def deliveries_retry(app, ids, all_dead):
    """Send dead deliveries again now."""
    from calltracking.jobs.outbox import deliver_one, requeue

    with app.session(write=True) as s:
        if all_dead:
            ids = tuple(s.scalars(select(Delivery.id).where(Delivery.status == "dead")))
        for i in ids:
            try:
                requeue(s, i)
            except ValueError as e:
                raise click.ClickException(str(e))
    failed = 0
    for i in ids:
        ok = deliver_one(app.config, write_sessionmaker(app.engine), i)
        failed += not ok
        click.echo(f"delivery {i}: {'sent' if ok else 'failed, will be retried'}")
    if failed:
        raise SystemExit(1)


# ----------------------------------------------------------------- recordings
@click.group()
def recordings():
    """Call recordings: conversion, measurements, retention."""


@recordings.command("process")
@click.option("--limit", type=int, default=500, show_default=True)
@pass_ctx
def recordings_process(app, limit):
    """Convert and measure the recordings of finished calls now."""
    from calltracking.jobs.recordings import process_pending

    stats = process_pending(app.config, app.sessionmaker, limit=limit)
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(stats.items())) or "nothing to do")


@recordings.command("retention")
@pass_ctx
def recordings_retention(app):
    """Delete the recordings older than keep_days now (the calls stay)."""
    from calltracking.jobs.recording_retention import apply_retention

    click.echo(f"purged {apply_retention(app.config, app.sessionmaker)} recording(s)")


@recordings.command("keep-days")
@click.argument("project")
@click.argument("days")
@pass_ctx
def recordings_keep_days(app, project, days):
    """Keep PROJECT's recordings DAYS days (0 = forever, 'default' = [recordings] keep_days)."""
    from calltracking.jobs.recording_retention import set_keep_days

    if days != "default" and not days.isdigit():
        raise click.ClickException(f"DAYS must be a whole number or 'default', got {days!r}")
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_project(s, project)
        set_keep_days(s, p, None if days == "default" else int(days))
    click.echo(f"project {project}: keep recordings "
               + ("per [recordings] keep_days" if days == "default" else f"{days} day(s)"))


@recordings.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def recordings_analyze(files):
    """Measure FILE (stereo: caller left) or CALLER_FILE OPERATOR_FILE."""
    from pathlib import Path

    from calltracking.jobs.recording_audio import RecordingError, analyze

    if len(files) > 2:
        raise click.ClickException("give one file, or two (caller, operator)")
    try:
        _audio, a = analyze([Path(f) for f in files])
    except RecordingError as e:
        raise click.ClickException(str(e))
    click.echo(json.dumps({"duration": a.duration, "channels": a.channels, "caller_talk": a.caller_talk,
                           "operator_talk": a.operator_talk, "talk_ratio": a.talk_ratio,
                           "longest_silence": a.longest_silence,
                           "operator_interruptions": a.operator_interruptions,
                           "caller_interruptions": a.caller_interruptions,
                           "first_operator_word": a.first_operator_word}))


# ---------------------------------------------------------------------- spend
@click.group()
def spend():
    """Advertising spend (cost per call in the reports)."""


@spend.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--project", default=None, help="Project of every row (else a 'project' column).")
@click.option("--create-missing", is_flag=True, help="Create unknown sources and campaigns.")
@pass_ctx
def spend_import(app, file, project, create_missing):
    """Import ad spend from a CSV file (day, source, campaign, amount): all rows or none."""
    import getpass
    import os

    from calltracking.reports.adspend import ImportFailed, import_spend

    text = file.read()
    try:
        with app.session(write=True) as s:
            r = import_spend(s, text, default_project=project, create_missing=create_missing,
                             file_name=os.path.basename(getattr(file, "name", "") or "-"),
                             imported_by=f"cli:{getpass.getuser()}")
    except ImportFailed as e:
        for err in e.errors:
            click.echo(f"{getattr(file, 'name', 'file')}: {err}", err=True)
        raise click.ClickException(str(e))
    click.echo(f"imported {r.rows} row(s): {r.created} new, {r.updated} updated"
               + (f" (import {', '.join(map(str, r.imports))})" if r.imports else ""))


@spend.command("list")
@click.argument("project")
@FORMAT
@pass_ctx
def spend_list(app, project, fmt):
    with UserErrors(), app.session() as s:
        p = svc.get_project(s, project)
        stmt = (select(AdSpend, Source.name, Campaign.name).join(Source, Source.id == AdSpend.source_id)
                .outerjoin(Campaign, Campaign.id == AdSpend.campaign_id)
                .where(AdSpend.project_id == p.id).order_by(AdSpend.day, Source.name))
        rows = [{"day": a.day.isoformat(), "source": sn, "campaign": cn or "", "amount": str(a.amount),
                 "currency": a.currency} for a, sn, cn in s.execute(stmt)]
    out(rows, ("day", "source", "campaign", "amount", "currency"), fmt)


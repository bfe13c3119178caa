"""`transcripts` sub-commands: the backlog, one call transcribed now, keyword lists applied again."""
from __future__ import annotations

import click

from calltracking import entities as svc
from calltracking.cli._common import UserErrors, pass_ctx


@click.group()
def transcripts():
    """Call transcripts and keyword spotting."""


@transcripts.command("status")
@pass_ctx
def transcripts_status(app):
    """The backend, the backlog and the transcripts per status."""
    from calltracking.transcripts.backends import backend_problem
    from calltracking.transcripts.backlog import figures

    cfg = app.config.transcripts
    with app.session() as s:
        fig = figures(s, cfg)
    click.echo(f"backend: {cfg.backend}")
    problem = backend_problem(cfg) if cfg.backend != "none" else None
    if problem:
        click.echo(f"problem: {problem}")
    click.echo(f"waiting: {fig['backlog']}")
    for status, n in fig["statuses"].items():
        click.echo(f"{status}: {n}")


@transcripts.command("call")
@click.argument("call_id", type=int)
@pass_ctx
def transcripts_call(app, call_id):
    """Transcribe one recorded call now, in this process (its earlier transcript is replaced)."""
    from calltracking.jobs.transcripts import transcribe_call_now
    from calltracking.models import RecordingInfo, Transcript, TranscriptPhrase
    from sqlalchemy import func, select

    if app.config.transcripts.backend == "none":
        raise click.ClickException("[transcripts] backend is none: choose one (docs/transcripts.md)")
    with app.session() as s:
        info = s.get(RecordingInfo, call_id)
        if info is None or info.status != "ok" or not info.file:
            raise click.ClickException(f"call {call_id} has no converted recording")
        file = info.file
    from calltracking.db import make_sessionmaker, writer

    ok = transcribe_call_now(app.config, make_sessionmaker(writer(app.engine)), call_id, [file])
    with app.session() as s:
        t = s.get(Transcript, call_id)
        if ok:
            n = s.scalar(select(func.count()).where(TranscriptPhrase.call_id == call_id))
            click.echo(f"call {call_id}: transcribed by {t.backend}, {n} phrase(s)")
        else:
            click.echo(f"call {call_id}: failed: {t.error}", err=True)
    raise SystemExit(0 if ok else 1)


@transcripts.command("reapply")
@click.argument("project")
@pass_ctx
def transcripts_reapply(app, project):
    """Apply a project's keyword lists again to its transcribed calls."""
    from calltracking.transcripts.keywords import reapply

    with UserErrors(), app.session(write=True) as s:
        n = reapply(s, svc.get_project(s, project).id, app.config.transcripts.greeting_seconds)
    click.echo(f"{n} call(s) done")

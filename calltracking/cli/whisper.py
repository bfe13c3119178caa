"""`whisper` sub-commands: the operator's whisper per project and source, and its files."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.cli._common import FORMAT, UserErrors, out, pass_ctx
from calltracking.enums import WhisperVoice
from calltracking.models import Project, Source
from calltracking.whisper import files, rules, settings


@click.group()
def whisper():
    """The operator's whisper: settings and audio files."""


def _sync(app) -> files.SyncResult:
    with app.session() as s:
        wanted = files.plan(s)
    result = files.apply(wanted, app.config.asterisk.whisper_dir)
    for name, error in sorted(result.errors.items()):
        click.echo(f"{name}: {error}", err=True)
    return result


@whisper.command("sync")
@pass_ctx
def whisper_sync(app):
    """Make the missing or changed whisper files and remove the unused ones."""
    result = _sync(app)
    click.echo(result.summary())
    if result.errors:
        raise SystemExit(1)


@whisper.command("project")
@click.argument("project")
@click.option("--on/--off", "enabled", default=None, help="Turn the project's whisper on or off.")
@click.option("--template", default=None, help="Text template, e.g. '{source}, {campaign}'.")
@click.option("--voice", type=click.Choice([v.value for v in WhisperVoice]), default=None)
@pass_ctx
def whisper_project(app, project, enabled, template, voice):
    """Change a project's whisper, then make its files."""
    with UserErrors(), app.session(write=True) as s:
        settings.set_project(s, svc.get_project(s, project), enabled=enabled, template=template, voice=voice)
    click.echo(_sync(app).summary())


@whisper.command("source")
@click.argument("project")
@click.argument("source")
@click.option("--on/--off", "enabled", default=None, help="Whisper for calls from this source.")
@click.option("--text", default=None, help="The source's own text ('' = the project's template).")
@click.option("--upload", "upload", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A recording to play instead of speech (any format ffmpeg reads).")
@click.option("--no-upload", is_flag=True, help="Remove the source's recording.")
@pass_ctx
def whisper_source(app, project, source, enabled, text, upload, no_upload):
    """Change a source's whisper, then make its files."""
    directory = app.config.asterisk.whisper_dir
    with UserErrors(), app.session(write=True) as s:
        src = svc.get_source(s, svc.get_project(s, project), source)
        name = None
        if upload:
            try:
                name = files.save_upload(directory, src.id, Path(upload).read_bytes())
            except files.audio.WhisperAudioError as e:
                raise click.ClickException(f"{upload}: {e}") from None
        elif no_upload:
            files.remove_upload(directory, src.id)
            name = ""
        settings.set_source(s, src, enabled=enabled, text=text, upload=name)
    click.echo(_sync(app).summary())


@whisper.command("list")
@FORMAT
@pass_ctx
def whisper_list(app, fmt):
    """Every source of every project with its whisper: on/off, the text and the file played."""
    directory = app.config.asterisk.whisper_dir
    rows = []
    with app.session() as s:
        for p in s.scalars(select(Project).order_by(Project.key)):
            ps = settings.project_settings(s, p)
            for src in s.scalars(select(Source).where(Source.project_id == p.id).order_by(Source.name)):
                own = settings.source_settings(s, src)
                rows.append({"project": p.key, "source": src.name, "project_on": ps.enabled,
                             "source_on": own.enabled, "voice": ps.voice,
                             "text": "" if own.upload else files.source_text(p, ps, src, own, None),
                             "upload": own.upload, "file": rules.lookup(directory, src.id, None)})
    out(rows, ("project", "source", "project_on", "source_on", "voice", "text", "file"), fmt)

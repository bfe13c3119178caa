"""Settings → Whisper (admin): what the operator hears before a call is connected.

Per project: on/off, the text template and the voice; per source: on/off, its own text, an
uploaded recording (converted to 8 kHz mono) and a player to hear the file Asterisk will play.
Every change is saved through :mod:`calltracking.whisper.settings`, audited, and followed by
:func:`calltracking.whisper.files.apply` so the files match the settings before the page
returns.
"""
from __future__ import annotations

import os

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from calltracking.enums import WhisperVoice
from calltracking.models import Campaign, Project, Source
from calltracking.settings_rules import ServiceError
from calltracking.whisper import audio, files, rules, settings

from webui.auth import roles_required
from webui.context import audit, chosen_project, config, db

bp = Blueprint("settings_whisper", __name__, url_prefix="/settings/whisper")


def _dir() -> str:
    return config().asterisk.whisper_dir


def _sync() -> None:
    """Make the files the saved settings need; say what failed."""
    result = files.apply(files.plan(db()), _dir())
    db().rollback()                          # the plan's read transaction
    if result.errors:
        flash(_("Some whisper files could not be made: %(errors)s",
                errors="; ".join(f"{k}: {v}" for k, v in sorted(result.errors.items()))[:500]), "error")


def _text_error() -> str:
    return _("The text may use only {source}, {campaign}, {label} and {project}, at most %(n)s characters.",
             n=rules.MAX_TEXT)


@bp.route("")
@roles_required("admin")
def index():
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    ctx = {"projects": projects, "project": project, "voices": list(WhisperVoice), "fields": rules.FIELDS,
           "espeak": bool(audio.espeak_path())}
    if project is not None:
        ps = settings.project_settings(s, project)
        rows = []
        for src in s.scalars(select(Source).where(Source.project_id == project.id).order_by(Source.name)):
            own = settings.source_settings(s, src)
            first = s.scalars(select(Campaign).where(Campaign.source_id == src.id, Campaign.active.is_(True))
                              .order_by(Campaign.name).limit(1)).first()
            rows.append({"source": src, "own": own,
                         "text": "" if own.upload else files.source_text(project, ps, src, own, first),
                         "campaign": first.name if first and not own.upload else "",
                         "file": rules.lookup(_dir(), src.id, first.id if first else None)})
        ctx.update(settings=ps, rows=rows)
    return render_template("settings/whisper.html", **ctx)


@bp.route("/<int:project_id>", methods=["POST"])
@roles_required("admin")
def save_project(project_id: int):
    s = db()
    project = s.get(Project, project_id) or abort(404)
    f = request.form
    voice = f.get("voice", WhisperVoice.EN)
    if voice not in set(WhisperVoice):
        flash(_("Unknown voice."), "error")
        return redirect(url_for(".index", project=project.id))
    try:
        row = settings.set_project(s, project, enabled=f.get("enabled") == "on",
                                   template=f.get("template", ""), voice=voice)
    except ServiceError:
        s.rollback()
        flash(_text_error(), "error")
        return redirect(url_for(".index", project=project.id))
    audit("update", "whisper", project.id, {"enabled": row.enabled, "template": row.template, "voice": row.voice})
    s.commit()
    _sync()
    flash(_("Saved."), "success")
    return redirect(url_for(".index", project=project.id))


@bp.route("/source/<int:source_id>", methods=["POST"])
@roles_required("admin")
def save_source(source_id: int):
    s = db()
    src = s.get(Source, source_id) or abort(404)
    f = request.form
    upload = None
    uploaded = request.files.get("recording")
    if uploaded is not None and uploaded.filename:
        try:
            upload = files.save_upload(_dir(), src.id, uploaded.read(audio.MAX_UPLOAD_BYTES + 1))
        except audio.WhisperAudioError as e:
            flash(_("This file cannot be played to the operator (at most %(s)s s, a recording ffmpeg "
                    "reads): %(reason)s", s=int(audio.MAX_SECONDS), reason=str(e)), "error")
            return redirect(url_for(".index", project=src.project_id))
    elif f.get("remove_recording") == "on":
        files.remove_upload(_dir(), src.id)
        upload = ""
    try:
        row = settings.set_source(s, src, enabled=f.get("enabled") == "on", text=f.get("text", ""),
                                  upload=upload)
    except ServiceError:
        s.rollback()
        flash(_text_error(), "error")
        return redirect(url_for(".index", project=src.project_id))
    audit("update", "whisper_source", src.id, {"enabled": row.enabled, "text": row.text, "upload": row.upload})
    s.commit()
    _sync()
    flash(_("Saved."), "success")
    return redirect(url_for(".index", project=src.project_id))


@bp.route("/play/<int:source_id>")
@roles_required("admin")
def play(source_id: int):
    """The file the operator hears for a call from this source (its first campaign's when
    the text names the campaign), as Asterisk plays it."""
    s = db()
    src = s.get(Source, source_id) or abort(404)
    first = s.scalars(select(Campaign.id).where(Campaign.source_id == src.id, Campaign.active.is_(True))
                      .order_by(Campaign.name).limit(1)).first()
    path = rules.lookup(_dir(), src.id, first)
    if not path or not os.path.isfile(path + rules.EXT):
        abort(404)
    resp = send_file(path + rules.EXT, mimetype="audio/wav", max_age=0)
    resp.headers["Cache-Control"] = "no-store"
    return resp

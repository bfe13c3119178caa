"""Transcripts in the web UI: Settings → Keyword lists (admin), the keyword report (admins and
supervisors, with CSV), and the dialogue on the call card (``call_transcript`` in templates,
rendered by ``journal/_transcript.html``). The rules: :mod:`calltracking.transcripts`."""
from __future__ import annotations

import datetime as dt
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from calltracking import entities
from calltracking.models import KeywordList, Project, utcnow
from calltracking.transcripts import keywords, lists, mentions, view

from webui import csvexport, dateinput
from webui.auth import roles_required
from webui.context import audit, chosen_project, config, db

bp = Blueprint("transcripts", __name__)

DEFAULT_DAYS = 30


@bp.app_template_global("call_transcript")
def call_transcript(call):
    """The call's transcript for the card (None: not transcribed)."""
    return view.transcript_of(db(), call.id)


def _error(e: keywords.KeywordError) -> str:
    """The reason a list was refused, in the user's language."""
    said = {
        "entry_long": _("“%(value)s…”: an entry is at most %(n)d characters.", value=e.value, n=keywords.MAX_ENTRY),
        "star": _("“%(value)s”: * may only end an entry (a stem such as достав*).", value=e.value),
        "no_word": _("“%(value)s” has no word in it.", value=e.value),
        "too_many": _("A list holds at most %(n)d entries.", n=keywords.MAX_ENTRIES),
        "name": _("Give the list a name (at most 100 characters)."),
        "tag": _("The tag is at most 100 characters."),
        "empty": _("The list has no word."),
        "duplicate": _("The project already has a list named “%(value)s”.", value=e.value),
        "missing": _("No such list."),
    }
    return _("The list was not saved: %(reason)s", reason=said.get(e.code, str(e)))


# ---------------------------------------------------------------- settings
@bp.route("/settings/keywords")
@roles_required("admin")
def settings():
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    rows = lists.lists_of(s, project.id) if project else []
    return render_template("settings/keywords.html", projects=projects, project=project, rows=rows,
                           greeting_seconds=config().transcripts.greeting_seconds,
                           backend=config().transcripts.backend)


@bp.route("/settings/keywords/<int:project_id>", methods=["POST"])
@roles_required("admin")
def save(project_id):
    p = db().get(Project, project_id) or abort(404)
    f = request.form
    list_id = f.get("list_id", type=int)
    try:
        kl = lists.save_list(db(), p.id, f.get("name", ""), f.get("words", ""), f.get("tag", ""),
                             f.get("greeting") == "on", list_id)
    except keywords.KeywordError as e:
        db().rollback()
        flash(_error(e), "error")
        return redirect(url_for("transcripts.settings", project=p.id))
    audit("update" if list_id else "create", "keyword_list", kl.id,
          {"name": kl.name, "words": kl.words, "tag": kl.tag, "greeting": kl.greeting})
    db().commit()
    flash(_("List saved. Press “Apply again” to apply it to the calls transcribed already."), "ok")
    return redirect(url_for("transcripts.settings", project=p.id))


@bp.route("/settings/keywords/lists/<int:list_id>/delete", methods=["POST"])
@roles_required("admin")
def delete(list_id):
    kl = db().get(KeywordList, list_id)
    if kl is None:
        abort(404)
    project_id = kl.project_id
    audit("delete", "keyword_list", kl.id, {"name": kl.name})
    db().delete(kl)
    db().commit()
    flash(_("List deleted."), "ok")
    return redirect(url_for("transcripts.settings", project=project_id))


@bp.route("/settings/keywords/<int:project_id>/reapply", methods=["POST"])
@roles_required("admin")
def reapply(project_id):
    p = db().get(Project, project_id) or abort(404)
    n = keywords.reapply(db(), p.id, config().transcripts.greeting_seconds)
    audit("reapply", "keyword_list", None, {"project": p.key, "calls": n})
    db().commit()
    flash(_("Keyword lists applied again to %(n)d transcribed call(s).", n=n), "ok")
    return redirect(url_for("transcripts.settings", project=p.id))


# ------------------------------------------------------------------ report
def _report_args():
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    by = request.args.get("by", "source")
    if by not in mentions.BY:
        by = "source"
    tz = project.timezone if project else "UTC"
    error = None
    try:
        frm, to = dateinput.to_iso(request.args.get("from")), dateinput.to_iso(request.args.get("to"))
        end = entities.parse_when(to, tz, end=True) if to else utcnow()
        start = entities.parse_when(frm, tz) if frm else end - dt.timedelta(days=DEFAULT_DAYS)
    except (entities.ServiceError, dateinput.DateInputError) as e:
        error, end = str(e), utcnow()
        start = end - dt.timedelta(days=DEFAULT_DAYS)
    rows = mentions.mention_rows(s, project.id, start, end, by) if project else []
    return projects, project, by, start, end, rows, error


@bp.route("/reports/mentions")
@roles_required("admin", "supervisor")
def report():
    projects, project, by, start, end, rows, error = _report_args()
    return render_template("reports/mentions.html", projects=projects, project=project, by=by, rows=rows,
                           start=start, end=end, error=error, args=request.args)


@bp.route("/reports/mentions.csv")
@roles_required("admin", "supervisor")
def report_csv():
    projects, project, by, start, end, rows, error = _report_args()
    if error:
        return Response(error + "\n", status=400, mimetype="text/plain")
    buf = io.StringIO()
    w = csvexport.writer(buf)
    w.writerow([_("Source") if by == "source" else _("Operator"), _("Keyword list"), _("Mentions"), _("Calls")])
    for r in rows:
        w.writerow([r["name"], r["list"], r["mentions"], r["calls"]])
    name = f"mentions-{project.key if project else 'none'}-{by}.csv"
    return Response(csvexport.BOM + buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

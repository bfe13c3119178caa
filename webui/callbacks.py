"""Settings → Callback requests (admin): a project's website callback settings
(:mod:`calltracking.callbacks.settings`): on/off, opening hours, retries, limits, the
outbound context and the queue. Saved, audited; a wrong value is named in the user's language."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from calltracking.callbacks import settings as cb_settings
from calltracking.models import Project

from webui.auth import roles_required
from webui.context import audit, chosen_project, config, db

bp = Blueprint("settings_callbacks", __name__, url_prefix="/settings/callbacks")

LABELS = {
    "schedule": _l("Opening hours"), "retries": _l("Retries"), "retry_delay_seconds": _l("Delay between attempts, s"),
    "cooldown_seconds": _l("Cooldown per number, s"), "max_calls_per_hour": _l("Calls per hour at most"),
    "allowed_regions": _l("Allowed regions"), "outbound_context": _l("Outbound context"),
    "widget_delay_seconds": _l("Widget delay, s"), "queue": _l("Queue"),
}
HELP = {
    "schedule": _l("One line per rule, in the project's time zone, e.g. “mon-fri 09:00-18:00” and "
                   "“sat 10:00-14:00”. Empty: always open. Outside the hours a request waits for the next opening."),
    "allowed_regions": _l("Two-letter regions such as RU,KZ. Empty: the default region only."),
    "outbound_context": _l("The dialplan context that dials the visitor's number (E.164, e.g. +79161234567)."),
    "widget_delay_seconds": _l("Empty: the project's median time to call."),
    "queue": _l("Empty: the queue of the routing rule the request's source matches."),
}


def _error(e: cb_settings.SettingsError) -> str:
    lo_hi = cb_settings.LIMITS.get(e.field)
    if lo_hi:
        return _("%(field)s: a whole number from %(lo)s to %(hi)s.", field=LABELS[e.field], lo=lo_hi[0], hi=lo_hi[1])
    if e.field == "schedule":
        return _("%(field)s: write days and hours like “mon-fri 09:00-18:00” (%(detail)s).",
                 field=LABELS["schedule"], detail=str(e).split(": ", 1)[-1])
    return _("%(field)s: this value is not valid.", field=LABELS.get(e.field, e.field))


@bp.route("")
@roles_required("admin")
def index():
    projects = list(db().scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    row = cb_settings.get_or_default(db(), project.id) if project else None
    return render_template("settings/callbacks.html", projects=projects, project=project, row=row,
                           labels=LABELS, help=HELP, form=None, originate=config().ami.originate)


@bp.route("/<int:project_id>", methods=["POST"])
@roles_required("admin")
def save(project_id: int):
    s = db()
    project = s.get(Project, project_id) or abort(404)
    values = {k: request.form.get(k, "") for k in (*LABELS, "enabled")}
    try:
        cb_settings.save(s, project.id, values)
    except cb_settings.SettingsError as e:
        s.rollback()
        flash(_error(e), "error")
        projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
        return render_template("settings/callbacks.html", projects=projects, project=project,
                               row=cb_settings.get_or_default(s, project.id), labels=LABELS, help=HELP,
                               form=values, originate=config().ami.originate), 400
    audit("update", "callback_settings", project.id, {k: v for k, v in values.items() if k != "schedule"})
    s.commit()
    flash(_("Callback settings saved."), "success")
    return redirect(url_for(".index", project=project.id))

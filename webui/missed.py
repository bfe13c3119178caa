"""Missed-calls worklist: open until called back (answered later call) or marked handled."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from calltracking.calls import missed as missed_calls
from calltracking.calls import originate
from calltracking import entities
from calltracking.models import Call, Operator, Project

from webui.auth import roles_required
from webui.context import audit, config, current_user, db
from webui.display import default_tz, zone
from webui.filters import filter_choices

bp = Blueprint("missed", __name__)
DEFAULT_DAYS = 30


@bp.route("/missed")
@roles_required("admin", "supervisor")
def index():
    state = request.args.get("state", "open")
    if state not in ("open", "closed", "all"):
        state = "open"
    project_id = request.args.get("project", type=int)
    tz = default_tz()
    if project_id:
        p = db().get(Project, project_id)
        if p is None:
            abort(404)
        tz = p.timezone
    error = None
    start = end = None
    args = dict(request.args)
    if not args.get("from"):
        # a worklist is about recent calls; the window keeps it fast on years of history
        args["from"] = (dt.datetime.now(zone(tz)) - dt.timedelta(days=DEFAULT_DAYS)).date().isoformat()
    try:
        if args.get("from"):
            start = entities.parse_when(args["from"], tz)
        if request.args.get("to"):
            end = entities.parse_when(request.args["to"], tz, end=True)
    except entities.ServiceError as e:
        error = str(e)
    rows = missed_calls.worklist(db(), project_id=project_id, state=state, start=start, end=end)
    return render_template("missed/index.html", rows=rows, state=state, error=error,
                           args=args, choices=filter_choices(),
                           can_originate=config().ami.originate)


def _missed_call(call_id: int) -> Call:
    call = db().get(Call, call_id)
    if call is None or call.status != "missed":
        abort(404)
    return call


@bp.route("/missed/<int:call_id>/handled", methods=["POST"])
@roles_required("admin", "supervisor")
def handled(call_id):
    call = _missed_call(call_id)
    missed_calls.mark_handled(db(), call, current_user().username)
    audit("handled", "call", call.id, {"caller": call.caller_number})
    db().commit()
    flash(_("Marked as handled."), "success")
    return redirect(request.form.get("next") or url_for("missed.index"))


@bp.route("/missed/<int:call_id>/call", methods=["POST"])
@roles_required("admin", "supervisor")
def click_to_call(call_id):
    cfg = config()
    if not cfg.ami.originate:
        abort(404)
    call = _missed_call(call_id)
    user = current_user()
    op = db().get(Operator, user.operator_id) if user.operator_id else None
    if op is None:
        flash(_("Link your user to an operator (Settings → Users) to call back from your phone."), "error")
        return redirect(url_for("missed.index"))
    try:
        originate.originate(cfg.ami.host, cfg.ami.port, cfg.ami.username, cfg.ami.secret, op.interface,
                      call.caller_number, caller_id=f"Callback <{call.did}>" if call.did else "",
                      variables={"CT_CALLBACK_FOR": call.id})
    except originate.OriginateError as e:
        flash(_("Click-to-call failed: %(err)s", err=str(e)), "error")
        return redirect(url_for("missed.index"))
    audit("originate", "call", call.id, {"operator": op.interface, "number": call.caller_number})
    db().commit()
    flash(_("Your phone %(iface)s will ring, then %(number)s is dialed.", iface=op.interface,
            number=call.caller_number), "success")
    return redirect(url_for("missed.index"))

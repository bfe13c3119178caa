"""Missed-calls worklist: open until called back (answered later call) or marked handled."""
from __future__ import annotations

import datetime as dt
import io

from flask import (
    Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for,
)
from flask_babel import gettext as _

from calltracking import csvsafe
from calltracking.callbacks import worklist as callback_worklist
from calltracking.calls import journal as call_journal
from calltracking.calls import missed as missed_calls
from calltracking.calls import originate
from calltracking import entities
from calltracking.enums import CallbackStatus
from calltracking.models import Call, CallbackRequest, Operator, Project, utcnow

from webui import dateinput
from webui.auth import roles_required
from webui.context import audit, config, current_user, db, ext
from webui.display import call_tz, default_tz, fmt_seconds, fmt_time, status_names, zone
from webui.filters import filter_choices

bp = Blueprint("missed", __name__)
DEFAULT_DAYS = 30


PAGE_SIZE = 50
#: unreached callback requests listed above the missed calls (the latest first)
CALLBACKS_SHOWN = 100


def _worklist_args():
    """(state, project_id, start, end, args shown in the form, error) from the query string."""
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
    args = {k: v for k, v in request.args.items() if k in ("state", "project", "from", "to") and v}
    if not args.get("from"):
        # a worklist is about recent calls; the window keeps it fast on years of history
        args["from"] = (dt.datetime.now(zone(tz)) - dt.timedelta(days=DEFAULT_DAYS)).date().isoformat()
    try:               # dates typed in the user's language, or ISO (webui/dateinput.py)
        if args.get("from"):
            start = entities.parse_when(dateinput.to_iso(args["from"]), tz)
        if args.get("to"):
            end = entities.parse_when(dateinput.to_iso(args["to"]), tz, end=True)
    except (entities.ServiceError, dateinput.DateInputError) as e:
        error = str(e)
    return state, project_id, start, end, args, error


@bp.route("/missed")
@roles_required("admin", "supervisor")
def index():
    state, project_id, start, end, args, error = _worklist_args()
    after = None
    if request.args.get("after"):
        try:
            after = call_journal.decode_cursor(request.args["after"])
        except call_journal.JournalError as e:
            error = str(e)
    rows = missed_calls.worklist(db(), project_id=project_id, state=state, start=start, end=end,
                                 limit=PAGE_SIZE + 1, after=after)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    total = missed_calls.count(db(), project_id=project_id, state=state, start=start, end=end)
    callbacks = [] if after is not None or error else callback_worklist.unreached(
        db(), project_id=project_id, state=state, start=start, end=end, limit=CALLBACKS_SHOWN)
    return render_template("missed/index.html", rows=rows, state=state, error=error, callbacks=callbacks,
                           args=args, choices=filter_choices(), total=total, paged=after is not None,
                           next_cursor=call_journal.encode_cursor(rows[-1].call) if more else None,
                           can_originate=config().ami.originate)


@bp.route("/missed/export.csv")
@roles_required("admin", "supervisor")
def export():
    """The worklist with these filters as CSV (every page), times in each call's project zone."""
    state, project_id, start, end, _args, error = _worklist_args()
    if error:
        return Response(error + "\n", status=400, mimetype="text/plain")
    factory = ext()["sessionmaker"]
    names = closed_by_names()

    def generate():
        session = factory()
        try:
            buf = io.StringIO()
            w = csvsafe.writer(buf, lineterminator="\n")
            w.writerow([_("Started"), _("Caller"), _("Caller name"), _("Source"), _("Reason"), _("Wait"),
                        _("State"), _("Closed at"), _("By")])
            yield "\ufeff" + buf.getvalue()
            after = None
            while True:
                rows = missed_calls.worklist(session, project_id=project_id, state=state, start=start,
                                             end=end, limit=1000, after=after)
                for r in rows:
                    c, tz = r.call, call_tz(r.call)
                    by = (r.outbound.operator_name if r.closed_by == "called_back" and r.outbound
                          else c.handled_by if r.closed_by == "handled" else "")
                    buf.seek(0)
                    buf.truncate()
                    w.writerow([fmt_time(c.started_at, tz), c.caller_number, c.caller_name,
                                c.source.name if c.source else "", status_names().get(c.missed_reason or "", ""),
                                fmt_seconds(c.wait_seconds), names.get(r.closed_by, names[None]),
                                fmt_time(r.closed_at, tz), by or ""])
                    yield buf.getvalue()
                if len(rows) < 1000:
                    return
                after = (rows[-1].call.started_at, rows[-1].call.id)
                session.expunge_all()
        finally:
            session.close()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=missed-calls.csv"})


def closed_by_names() -> dict:
    return {None: _("open"), "called_back": _("called back"), "called_again": _("caller called again"),
            "handled": _("handled")}


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


def _ring_user_then(number: str, caller_id: str, variables: dict, kind: str, row_id: int, after=None):
    """Click-to-call: the user's own phone (their operator's interface) rings, then ``number`` is
    dialled (AMI Originate); audited as ``originate`` of ``kind``/``row_id``; ``after(user)``
    runs before the commit when the PBX took the request."""
    cfg = config()
    user = current_user()
    op = db().get(Operator, user.operator_id) if user.operator_id else None
    if op is None:
        flash(_("Link your user to an operator (Settings → Users) to call back from your phone."), "error")
        return redirect(url_for("missed.index"))
    try:
        originate.originate(cfg.ami.host, cfg.ami.port, cfg.ami.username, cfg.ami.secret, op.interface,
                            number, caller_id=caller_id, variables=variables)
    except originate.OriginateError as e:
        flash(_("Click-to-call failed: %(err)s", err=str(e)), "error")
        return redirect(url_for("missed.index"))
    if after is not None:
        after(user)
    audit("originate", kind, row_id, {"operator": op.interface, "number": number})
    db().commit()
    flash(_("Your phone %(iface)s will ring, then %(number)s is dialed.", iface=op.interface,
            number=number), "success")
    return redirect(url_for("missed.index"))


@bp.route("/missed/<int:call_id>/call", methods=["POST"])
@roles_required("admin", "supervisor")
def click_to_call(call_id):
    if not config().ami.originate:
        abort(404)
    call = _missed_call(call_id)
    return _ring_user_then(call.caller_number, f"Callback <{call.did}>" if call.did else "",
                           {"CT_CALLBACK_FOR": call.id}, "call", call.id)


def _unreached(request_id: int) -> CallbackRequest:
    req = db().get(CallbackRequest, request_id)
    if req is None or req.status != CallbackStatus.UNREACHED:
        abort(404)
    return req


@bp.route("/missed/callback-requests/<int:request_id>/handled", methods=["POST"])
@roles_required("admin", "supervisor")
def callback_handled(request_id):
    req = _unreached(request_id)
    callback_worklist.mark_handled(db(), req, current_user().username, utcnow())
    audit("handled", "callback_request", req.id, {"phone": req.phone})
    db().commit()
    flash(_("Marked as handled."), "success")
    return redirect(url_for("missed.index"))


@bp.route("/missed/callback-requests/<int:request_id>/call", methods=["POST"])
@roles_required("admin", "supervisor")
def callback_call(request_id):
    """Click-to-call the visitor of an unreached request from the user's phone; the request is
    then handled by that user."""
    if not config().ami.originate:
        abort(404)
    req = _unreached(request_id)
    return _ring_user_then(req.phone, f"Callback <{req.phone}>", {}, "callback_request", req.id,
                           after=lambda user: callback_worklist.mark_handled(db(), req, user.username, utcnow()))

"""Call journal (filters, keyset pages, CSV export) and the call card."""
from __future__ import annotations

import io
import json
from pathlib import Path

from flask import (
    Blueprint, Response, abort, flash, redirect, render_template, request, send_file,
    stream_with_context, url_for,
)
from flask_babel import format_decimal, gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from calltracking.calls import export as call_export
from calltracking.calls import journal as call_journal
from calltracking.calls import saved_filters, visibility
from calltracking.jobs import recording_files
from calltracking.calls.missed import outbound_to, state_of as missed_state_of
from calltracking.models import Call, PromoCode, Tag, TargetRule, TrackingNumber, VisitorSession
from calltracking.qualify import tags as qualify_tags

from webui import csvexport, labels
from webui.auth import roles_required
from webui.context import audit, config, current_user, db, ext
from webui.display import call_tz, fmt_number, parse_money
from webui.filters import FILTER_KEYS, filter_choices, parse_filter

bp = Blueprint("journal", __name__)
AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".oga": "audio/ogg",
               ".opus": "audio/ogg", ".gsm": "audio/x-gsm", ".m4a": "audio/mp4"}
PAGE_SIZE = 50


def _args_without_cursor() -> dict:
    return {k: v for k, v in request.args.items() if k in FILTER_KEYS and v}


@bp.route("/calls")
@roles_required()
def index():
    sort = request.args.get("sort") or "-started"
    total = None
    try:
        flt, tz = parse_filter(request.args)
        pg = call_journal.page(db(), flt, after=request.args.get("after"),
                               before=request.args.get("before"), last=request.args.get("page") == "last",
                               limit=PAGE_SIZE, sort=sort)
        total = call_journal.count(db(), flt)
        error = None
    except call_journal.JournalError as e:
        pg, error, tz = call_journal.Page([], None, None, True, True), str(e), None
    base = _args_without_cursor()
    unsorted = {k: v for k, v in base.items() if k != "sort"}
    user = current_user()
    return render_template("journal/index.html", page=pg, error=error, args=base, sort=sort,
                           unsorted=unsorted, total=total, choices=filter_choices(), filter_tz=tz,
                           saved=saved_filters.for_user(db(), user.id),
                           export_url=url_for("journal.export", **unsorted))


@bp.route("/calls/filters", methods=["POST"])
@roles_required()
def save_filter():
    user = current_user()
    if not request.form.get("filter_name", "").strip():
        flash(_("Give the filter a name."), "error")
        return redirect(url_for("journal.index", **{k: v for k, v in request.form.items()
                                                    if k in FILTER_KEYS and v}))
    try:
        saved = saved_filters.save(db(), user.id, request.form.get("filter_name", ""), request.form)
    except saved_filters.SavedFilterError as e:
        flash(str(e), "error")
        return redirect(url_for("journal.index", **{k: v for k, v in request.form.items()
                                                    if k in FILTER_KEYS and v}))
    db().commit()
    flash(_("Filter “%(name)s” saved.", name=saved.name), "success")
    return redirect(url_for("journal.index", **saved_filters.as_args(saved)))


@bp.route("/calls/filters/<int:filter_id>/delete", methods=["POST"])
@roles_required()
def delete_filter(filter_id):
    if not saved_filters.delete(db(), current_user().id, filter_id):
        abort(404)
    db().commit()
    flash(_("Filter deleted."), "success")
    return redirect(url_for("journal.index"))


@bp.route("/calls/export.csv")
@roles_required()
def export():
    try:
        flt, _tz = parse_filter(request.args)
        flt.conditions()
    except call_journal.JournalError as e:
        return Response(str(e) + "\n", status=400, mimetype="text/plain")
    factory = ext()["sessionmaker"]

    def generate():
        session = factory()
        try:
            buf = io.StringIO()
            w = csvexport.writer(buf, lineterminator="\n")
            w.writerow(csvexport.titles(csvexport.JOURNAL_FIELDS, csvexport.JOURNAL_TITLES, english_keys=True))
            yield csvexport.BOM + buf.getvalue()
            for call in call_journal.iterate(session, flt):
                buf.seek(0)
                buf.truncate()
                w.writerow(csvexport.journal_row(call))
                yield buf.getvalue()
        finally:
            session.close()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=calls.csv"})


@bp.app_template_filter("audit_tags")
def audit_tags(details: str) -> list[tuple[str, list]]:
    """The tag lists in an audit entry's JSON details (a call edit): ``[(part, [tag, ...])]``,
    part "" for the new tags of an API edit, "before" / "after" for a call card edit."""
    try:
        d = json.loads(details or "")
    except ValueError:
        return []
    if not isinstance(d, dict):
        return []
    found = [("", d.get("tags"))] + [(k, d[k].get("tags")) for k in ("before", "after") if isinstance(d.get(k), dict)]
    return [(k, [str(t) for t in v]) for k, v in found if isinstance(v, list)]


def load_call(call_id: int) -> Call:
    """The call, if the current user may see it (operators: only calls they took or were rung for)."""
    call = db().scalars(select(Call).where(Call.id == call_id).options(
        selectinload(Call.legs), selectinload(Call.tags), selectinload(Call.project),
        selectinload(Call.source), selectinload(Call.campaign))).first()
    if call is None:
        abort(404)
    user = current_user()
    if not visibility.may_see(db(), call.id, user.role, user.operator_id):
        abort(403)
    return call


def _visible_to(user) -> list:
    """WHERE terms limiting calls to those ``user`` may open (the rule of :func:`load_call`)."""
    return visibility.visible_to(user.role, user.operator_id)


def timeline(call: Call) -> list[tuple]:
    """(time, text) events of the call, in order."""
    ev = []
    if call.started_at:
        ev.append((call.started_at, _("call from %(caller)s to %(did)s", caller=call.caller_number or "?",
                                      did=call.did or "?")))
    if call.queued_at:
        ev.append((call.queued_at, _("queued in %(queue)s", queue=call.queue or "?")))
    for leg in call.legs:
        who = leg.operator_name or leg.interface or "?"
        if leg.rung_at:
            what = _("transferred to %(who)s", who=who) if leg.kind == "transfer" else _("rang operator %(who)s", who=who)
            ev.append((leg.rung_at, what))
        if leg.answered_at:
            ev.append((leg.answered_at, _("%(who)s answered", who=who)))
        if leg.ended_at and leg.outcome != "answered":
            ev.append((leg.ended_at, _("%(who)s: %(outcome)s", who=who, outcome=labels.label(labels.LEG_OUTCOMES, leg.outcome))))
        elif leg.ended_at:
            ev.append((leg.ended_at, _("%(who)s left the call", who=who)))
    if call.ended_at:
        ev.append((call.ended_at, _("hung up")))
    ev.sort(key=lambda e: e[0])
    return ev


def recording_path(call: Call) -> tuple[str, Path | None]:
    """(name shown, playable file or None). Only a readable audio file whose real path (links
    followed) lies under ``[recordings] dir`` is served: :func:`calltracking.jobs.recording_files.recording_state`."""
    name = recording_files.recording_name(call)
    if not name:
        return "", None
    try:
        path = recording_files.recording_path(call, config().recordings.dir)
    except OSError:
        return name, None
    if path is None or path.suffix.lower() not in AUDIO_TYPES:
        return name, None
    return name, path


@bp.route("/calls/<int:call_id>")
@roles_required()
def card(call_id):
    return _render_card(load_call(call_id))


def _render_card(call: Call, typed: dict | None = None, status: int = 200):
    """The call card; ``typed``: the outcome form as the user sent it (shown again after an error)."""
    s = db()
    vs = s.get(VisitorSession, call.session_id) if call.session_id else None
    promo = s.get(PromoCode, call.promo_code_id) if call.promo_code_id else None
    tn = s.get(TrackingNumber, call.tracking_number_id) if call.tracking_number_id else None
    rec_name, rec_file = recording_path(call)
    project = call.project
    offered = qualify_tags.tags_of(s, project, offered_only=True) if project is not None else []
    offered_names = {t.name for t in offered}
    own = sorted(t.name for t in call.tags)
    history = []
    if call.caller_number:
        # only the calls this user may open (operators: the ones they took or were rung for)
        history = list(s.scalars(select(Call).where(Call.caller_number == call.caller_number, Call.id != call.id,
                                                    *_visible_to(current_user()))
                                 .order_by(Call.started_at.desc()).limit(20)
                                 .options(selectinload(Call.source))))
    return render_template("journal/card.html", call=call, tz=call_tz(call), events=timeline(call),
                           visitor=vs, promo=promo, tracking_number=tn, rec_name=rec_name,
                           rec_ok=rec_file is not None, history=history, outbound=outbound_to(s, call),
                           missed_state=missed_state_of(s, call),
                           offered_tags=offered,
                           target_rule=s.get(TargetRule, call.target_rule_id) if call.target_rule_id else None,
                           form=typed or {"tags": ", ".join(n for n in own if n not in offered_names),
                                          "picked": [n for n in own if n in offered_names],
                                          "value": "" if call.value is None else fmt_number(call.value, 2),
                                          "reason": call.closed_reason or "", "comment": call.comment or ""},
                           ), status


def set_tags(call: Call, names: list[str]) -> None:
    s = db()
    wanted = []
    for n in names:
        n = n.strip()[:100]
        if n and n not in wanted:
            wanted.append(n)
    tags = []
    for n in wanted:
        tag = s.scalars(select(Tag).where(Tag.project_id == call.project_id, Tag.name == n)).first()
        if tag is None:
            tag = Tag(project_id=call.project_id, name=n)
            s.add(tag)
            s.flush()
        tags.append(tag)
    call.tags = tags


@bp.route("/calls/<int:call_id>", methods=["POST"])
@roles_required()
def edit(call_id):
    call = load_call(call_id)
    f = request.form
    errors = []
    try:
        value = parse_money(f.get("value", ""))
    except ValueError:
        errors.append(_("Invalid amount “%(typed)s”: type a number such as %(example)s (not negative, "
                        "at most 2 decimals).", typed=(f.get("value") or "").strip(),
                        example=format_decimal(1234.5, format="#,##0.00")))
        value = call.value
    # the picker's predefined tags, then the free ones typed
    names = f.getlist("picked") + [n for n in (f.get("tags") or "").replace(";", ",").split(",") if n.strip()]
    if names and call.project_id is None:
        errors.append(_("This call has no project: tags cannot be stored."))
    if errors:
        for e in errors:
            flash(e, "error")
        typed = {k: f.get(k, "") for k in ("tags", "value", "reason", "comment")}
        typed["picked"] = f.getlist("picked")
        return _render_card(call, typed, 400)
    before = call_export.outcome(call)
    if call.project_id is not None:
        set_tags(call, names)
    call.value = value
    call.closed_reason = (f.get("reason") or "").strip()[:40]
    call.comment = (f.get("comment") or "").strip()[:5000]
    audit("update", "call", call.id, {"before": before, "after": call_export.outcome(call)})
    db().commit()
    flash(_("Saved."), "success")
    return redirect(url_for("journal.card", call_id=call.id))


@bp.route("/calls/<int:call_id>/recording")
@roles_required()
def recording(call_id):
    call = load_call(call_id)
    name, path = recording_path(call)
    if path is None:
        msg = _("The recording file is missing.") if name else _("This call has no recording.")
        return Response(msg + "\n", status=404, mimetype="text/plain")
    return send_file(path, mimetype=AUDIO_TYPES[path.suffix.lower()], conditional=True,
                     download_name=f"call-{call.id}{path.suffix.lower()}")


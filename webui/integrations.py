"""Settings → Integrations (admin only): notification rules with "send test", the dead-letter
list with retry, ad spend CSV upload with per-row errors, and the scheduler's jobs."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from calltracking.reports import adspend, spend_imports
from calltracking.jobs import outbox, rules, transport
from calltracking.db import write_sessionmaker
from calltracking.enums import NotificationChannel, NotificationEvent
from calltracking.models import Delivery, NotificationRule, Project
from calltracking.jobs.scheduler import default_jobs, job_statuses
from calltracking.transcripts.backlog import figures as transcript_figures

from webui import dateinput
from webui.auth import roles_required
from webui.context import audit, config, current_user, db, ext

bp = Blueprint("integrations", __name__, url_prefix="/settings/integrations")

CHANNELS = tuple(c.value for c in NotificationChannel)
EVENTS = tuple(e.value for e in NotificationEvent)
MAX_CSV = 5 * 1024 * 1024


def _labels():
    return {
        "email": _("E-mail"), "webhook": _("SMS / chat webhook"), "crm": _("CRM webhook"),
        "ga4": _("Google Analytics 4"), "sms": _("SMS"), "missed_call": _("Missed call"), "call_finished": _("Finished call"),
        "digest_daily": _("Daily digest"), "digest_weekly": _("Weekly digest"),
        "callback_unreached": _("Callback request unreached"),
    }


def _page(spend_errors=None, form=None, status=200):
    s = db()
    projects = s.scalars(select(Project).order_by(Project.key)).all()
    rows = s.execute(select(NotificationRule, Project.key).join(Project, Project.id == NotificationRule.project_id)
                     .order_by(Project.key, NotificationRule.id)).all()
    dead = outbox.dead_letters(s, limit=100)
    pending = s.scalar(select(func.count(Delivery.id)).where(Delivery.status == "pending"))
    st = {j.name: j for j in job_statuses(s)}
    jobs = [(spec, st.get(spec.name)) for spec in default_jobs()]
    return render_template("integrations/index.html", projects=projects, rules=rows, dead=dead,
                           pending=pending, jobs=jobs, transcripts=transcript_figures(s, config().transcripts),
                           labels=_labels(), channels=CHANNELS, events=EVENTS,
                           spend_errors=spend_errors or [], form=form or {}), status


@bp.route("/")
@roles_required("admin")
def index():
    return _page()


def _validate_rule(f) -> tuple[str | None, str]:
    """:func:`calltracking.jobs.rules.check_rule`'s verdict in the user's language (or None) and
    the target as stored (an SMS rule's numbers in E.164)."""
    try:
        return None, rules.check_rule(f.get("channel", ""), f.get("event", ""), f.get("target", ""),
                                      transport.target_policy(config()), region=config().general.default_region)
    except rules.RuleRefused as e:
        said = {
            "choice": _("Choose a channel and an event."),
            "target": _("The target is required."),
            "url": _("The target must be an http:// or https:// URL."),
            "host": _("The target URL has no host."),
            "event": _("CRM and GA4 take the event “Finished call”."),
            "digest": _("Digests are sent by e-mail or SMS."),
            "sms-event": _("SMS rules take the event “Missed call” or a digest."),
        }
        if e.code == "phone" and getattr(e, "number", ""):
            return _("Invalid phone number “%(number)s”.", number=e.number), ""
        return said.get(e.code, str(e)), ""      # "email", "refused": the message names the value


@bp.route("/rules", methods=["POST"])
@roles_required("admin")
def add_rule():
    f = request.form
    project = db().get(Project, f.get("project", type=int) or 0)
    error, target = (_("Choose a project."), "") if project is None else _validate_rule(f)
    if error:
        flash(error, "error")
        return _page(form=f, status=400)
    r = NotificationRule(project_id=project.id, name=f.get("name", "").strip()[:200] or f"{f['channel']} {f['event']}",
                         channel=f["channel"], event=f["event"], target=target[:1000],
                         body_template=f.get("body_template", ""), secret=f.get("secret", "").strip()[:200],
                         enabled=True,
                         target_only=f.get("target_only") == "on" and f["event"] == "call_finished")
    db().add(r)
    db().flush()
    audit("create", "notification_rule", r.id, {"channel": r.channel, "event": r.event, "target": r.target,
                                                 "target_only": r.target_only})
    db().commit()
    flash(_("Rule added."), "ok")
    return redirect(url_for("integrations.index"))


def _rule(rule_id: int) -> NotificationRule:
    r = db().get(NotificationRule, rule_id)
    if r is None:
        abort(404)
    return r


@bp.route("/rules/<int:rule_id>/delete", methods=["POST"])
@roles_required("admin")
def delete_rule(rule_id):
    r = _rule(rule_id)
    audit("delete", "notification_rule", r.id, {"channel": r.channel, "target": r.target})
    db().delete(r)
    db().commit()
    flash(_("Rule removed."), "ok")
    return redirect(url_for("integrations.index"))


@bp.route("/rules/<int:rule_id>/toggle", methods=["POST"])
@roles_required("admin")
def toggle_rule(rule_id):
    r = _rule(rule_id)
    r.enabled = not r.enabled
    audit("update", "notification_rule", r.id, {"enabled": r.enabled})
    db().commit()
    return redirect(url_for("integrations.index"))


@bp.route("/rules/<int:rule_id>/test", methods=["POST"])
@roles_required("admin")
def test_rule(rule_id):
    _rule(rule_id)
    db().rollback()  # send_test uses its own transactions
    try:
        ok, msg = rules.send_test(config(), write_sessionmaker(ext()["sessionmaker"]), rule_id)
    except ValueError as e:
        ok, msg = False, str(e)
    if ok:
        flash(_("Test message sent."), "ok")
    else:
        flash(_("Test failed: %(error)s", error=msg), "error")
    return redirect(url_for("integrations.index"))


@bp.route("/deliveries/<int:delivery_id>/retry", methods=["POST"])
@roles_required("admin")
def retry(delivery_id):
    try:
        outbox.requeue(db(), delivery_id)
    except ValueError:
        abort(404)
    db().commit()
    ok = outbox.deliver_one(config(), write_sessionmaker(ext()["sessionmaker"]), delivery_id)
    flash(_("Sent.") if ok else _("Failed again; it will be retried with backoff."), "ok" if ok else "error")
    return redirect(url_for("integrations.index"))


@bp.route("/spend", methods=["POST"])
@roles_required("admin")
def upload_spend():
    f = request.files.get("file")
    project = db().get(Project, request.form.get("project", type=int) or 0)
    if f is None or not f.filename:
        flash(_("Choose a CSV file."), "error")
        return _page(status=400)
    raw = f.read(MAX_CSV + 1)
    if len(raw) > MAX_CSV:
        flash(_("The file is larger than 5 MB."), "error")
        return _page(status=400)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        flash(_("The file is not UTF-8 text."), "error")
        return _page(status=400)
    try:
        result = adspend.import_spend(db(), text, default_project=project.key if project else None,
                                      create_missing=request.form.get("create_missing") == "yes",
                                      file_name=f.filename, imported_by=current_user().username)
    except adspend.ImportFailed as e:
        db().rollback()
        flash(_("Nothing was imported: %(n)d bad row(s).", n=len(e.errors)), "error")
        return _page(spend_errors=e.errors, status=400)
    audit("import", "ad_spend", None, {"file": f.filename, "created": result.created, "updated": result.updated,
                                       "imports": result.imports})
    db().commit()
    flash(_("Imported %(n)d row(s): %(new)d new, %(upd)d updated.", n=result.rows, new=result.created,
            upd=result.updated), "ok")
    return redirect(url_for("integrations.index"))


def _spend_filter(args) -> tuple[adspend.SpendFilter, list[str]]:
    """The list's filter from the query string (or form); the errors of bad values."""
    flt, errors = adspend.SpendFilter(), []
    flt.project_id = args.get("project", type=int)
    flt.source_id = args.get("source", type=int)
    for key in ("from", "to"):          # typed in the user's language, or ISO (webui/dateinput.py)
        try:
            setattr(flt, "first" if key == "from" else "last", dateinput.parse(args.get(key)))
        except dateinput.DateInputError as e:
            errors.append(str(e))
    return flt, errors


@bp.route("/spend", methods=["GET"])
@roles_required("admin")
def spend_list():
    from calltracking.models import Source

    s = db()
    flt, errors = _spend_filter(request.args)
    for e in errors:
        flash(e, "error")
    rows, count, totals = adspend.list_spend(s, flt)
    projects = s.scalars(select(Project).order_by(Project.name, Project.key)).all()
    pname = {p.id: p.name for p in projects}
    sources = [(x.id, f"{pname.get(x.project_id, '?')} / {x.name}")
               for x in s.scalars(select(Source).order_by(Source.project_id, Source.name))
               if flt.project_id is None or x.project_id == flt.project_id]
    return render_template("integrations/spend.html", rows=rows, count=count, totals=totals, projects=projects,
                           sources=sources, args=request.args,
                           imports=spend_imports.list_imports(s, project_id=flt.project_id))


def _spend_import(import_id: int):
    row = next(iter(spend_imports.list_imports(db(), import_id=import_id)), None)
    if row is None:
        abort(404)
    return row


@bp.route("/spend/imports/<int:import_id>/delete", methods=["GET"])
@roles_required("admin")
def spend_import_confirm(import_id):
    """The confirmation of "Delete this import": what goes (the batch's rows still pointing to it)."""
    return render_template("integrations/spend_import_delete.html", imp=_spend_import(import_id))


@bp.route("/spend/imports/<int:import_id>/delete", methods=["POST"])
@roles_required("admin")
def spend_import_delete(import_id):
    """Delete one import and exactly its rows (the confirmation page's form)."""
    imp = _spend_import(import_id)
    _batch, n = spend_imports.delete_import(db(), import_id)
    audit("delete", "ad_spend_import", import_id, {"file": imp.file_name, "project": imp.project,
                                                   "imported_by": imp.imported_by, "rows": n,
                                                   "imported_at": imp.imported_at.isoformat()})
    db().commit()
    flash(_("Import “%(file)s” deleted: %(n)d row(s).", file=imp.file_name, n=n), "ok")
    return redirect(url_for("integrations.spend_list"))


@bp.route("/spend/delete", methods=["POST"])
@roles_required("admin")
def spend_delete():
    s = db()
    back = {k: v for k, v in request.form.items() if k in ("project", "source", "from", "to") and v}
    row_id = request.form.get("row", type=int)
    if row_id is not None:
        n = adspend.delete_spend(s, row_id=row_id)
        audit("delete", "ad_spend", row_id, {"rows": n})
    else:
        flt, errors = _spend_filter(request.form)
        if errors or flt.project_id is None:
            flash(errors[0] if errors else _("Choose a project to delete its imported spend."), "error")
            return redirect(url_for("integrations.spend_list", **back))
        n = adspend.delete_spend(s, flt)
        audit("delete", "ad_spend", None, {"rows": n, **back})
    s.commit()
    flash(_("Deleted %(n)d row(s).", n=n), "ok")
    return redirect(url_for("integrations.spend_list", **back))

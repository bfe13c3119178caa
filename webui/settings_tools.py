"""Settings tools (admin): CSV import/export of numbers, and "test a call" for routing rules."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from calltracking.attribution import lookup
from calltracking.attribution import routing
from calltracking.attribution.numbers_csv import COLUMNS, ImportFailed, export_numbers, import_numbers
from calltracking import entities
from calltracking.hooks import inputs as hook_inputs
from calltracking.models import Project, RoutingRule, Source

from webui.auth import roles_required
from webui.context import audit, config, db
from webui.display import default_tz, zone
from webui.settings_specs import ENTITIES, campaigns, projects, sources

bp = Blueprint("settings_tools", __name__, url_prefix="/settings")


@bp.app_context_processor
def _entities():
    return {"settings_entities": ENTITIES}


@bp.route("/numbers/csv", methods=["GET", "POST"])
@roles_required("admin")
def numbers_csv():
    s = db()
    errors, result = [], None
    if request.method == "POST":
        upload = request.files.get("file")
        raw = upload.read() if upload else b""
        project_key = (request.form.get("project") or "").strip() or None
        if not raw:
            errors = [_("Choose a CSV file to import.")]
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text, errors = None, [_("The file is not UTF-8 text.")]
            if text is not None:
                try:
                    result = import_numbers(s, text, config().general.default_region,
                                            default_project=project_key)
                    audit("import", "numbers", None, {"imported": result.imported, **result.created})
                    s.commit()
                    flash(_("Imported %(n)s numbers.", n=result.imported), "success")
                    return redirect(url_for("settings_tools.numbers_csv"))
                except ImportFailed as e:
                    s.rollback()
                    errors = [str(err) for err in e.errors]
                    errors.insert(0, _("Nothing was imported: %(n)s bad row(s).", n=len(e.errors)))
    project_list = list(s.scalars(select(Project).order_by(Project.key)))
    return render_template("settings/numbers_csv.html", errors=errors, projects=project_list,
                           columns=COLUMNS), (400 if errors else 200)


@bp.route("/numbers/export.csv")
@roles_required("admin")
def numbers_export():
    project = (request.args.get("project") or "").strip() or None
    text = export_numbers(db(), project)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=numbers.csv"})


def evaluate(s, project: Project, when_local: dt.datetime, did: str = "", source_id=None,
             campaign_id=None, keyword: str = "", utm_term: str = "", forwarded: str = "") -> dict:
    """Which rule and queue a call to ``did`` at ``when_local`` would get (``forwarded``: the
    forwarding number, cleaned as the ``route`` hook cleans ``agi_rdnis``)."""
    att = None
    vs = None
    region = config().general.default_region
    if did:
        att = lookup.attribute(s, did, when_local.astimezone(dt.timezone.utc), region,
                               hook_inputs.forwarded_from(forwarded, region))
        if att.project is not None and att.project.id != project.id:
            raise entities.ServiceError(f"number {att.did} belongs to project {att.project.key!r}")
        source_id = source_id or att.source_id
        campaign_id = campaign_id or att.campaign_id
        vs = att.visitor_session
    has_session = bool(vs is not None or keyword or utm_term)
    facts = routing.CallFacts(local_time=when_local, source_id=source_id, campaign_id=campaign_id,
                              keyword=keyword or (vs.keyword if vs else ""),
                              utm_term=utm_term or (vs.utm_term if vs else ""), has_session=has_session,
                              forwarded_from=hook_inputs.forwarded_from(forwarded, region))
    rows = s.scalars(select(RoutingRule).where(RoutingRule.project_id == project.id)).all()
    rules = [routing.Rule.from_row(r) for r in rows]
    rule = routing.choose(rules, facts)
    default_queue = routing.default_queue(project.default_queue, config().general.default_queue)
    target = rule.target if rule else ""
    checked = [(r, routing.rule_matches(r, facts)) for r in routing.sort_rules(rules)]
    # a rule with a Dial target and no queue: the call goes to the target, no queue is shown
    return {"rule": rule, "queue": routing.queue_for(rule, "" if target else default_queue),
            "target": target, "default_queue": default_queue,
            "attribution": att, "source": s.get(Source, source_id) if source_id else None,
            "checked": checked, "facts": facts}


@bp.route("/rules/test", methods=["GET", "POST"])
@roles_required("admin")
def routing_test():
    s = db()
    f = request.form if request.method == "POST" else request.args
    result, error = None, None
    if request.method == "POST":
        try:
            pid = int(f.get("project_id") or 0)
            project = s.get(Project, pid)
            if project is None:
                raise entities.ServiceError(_("Choose a project."))
            tz = zone(project.timezone)
            text = (f.get("when") or "").strip()
            if text:
                try:
                    when = dt.datetime.fromisoformat(text)
                except ValueError:
                    raise entities.ServiceError(f"invalid date and time {text!r}: use YYYY-MM-DD HH:MM") from None
                when = when.replace(tzinfo=tz) if when.tzinfo is None else when.astimezone(tz)
            else:
                when = dt.datetime.now(tz)
            did = (f.get("did") or "").strip()
            result = evaluate(s, project, when, did, int(f["source_id"]) if f.get("source_id") else None,
                              int(f["campaign_id"]) if f.get("campaign_id") else None,
                              (f.get("keyword") or "").strip(), (f.get("utm_term") or "").strip(),
                              (f.get("forwarded_from") or "").strip())
            result["when"] = when
        except (entities.ServiceError, ValueError) as e:
            error = str(e)
    now_local = dt.datetime.now(zone(default_tz())).strftime("%Y-%m-%dT%H:%M")
    return render_template("settings/routing_test.html", result=result, error=error, form=f,
                           projects=projects(s), sources=sources(s), campaigns=campaigns(s),
                           now_local=now_local), (400 if error else 200)

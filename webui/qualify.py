"""Settings → Target calls (admin): a project's target rules, its predefined tags, and applying
the rules again to a date range. The rules of a valid rule or tag are in
:mod:`calltracking.qualify.settings` and :mod:`calltracking.qualify.tags`; every change is audited.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from babel.dates import get_day_names
from flask_babel import get_locale, gettext as _
from sqlalchemy import select

from calltracking.db import write_sessionmaker
from calltracking.models import Campaign, Project, Source, Tag, TargetRule
from calltracking.qualify import apply as qualify_apply
from calltracking.qualify import settings as rule_settings
from calltracking.qualify import tags as tag_settings
from calltracking.qualify.rules import Rule
from calltracking.reports.rollup import day_bounds, zone
from calltracking.settings_rules import ServiceError

from webui import dateinput
from webui.auth import roles_required
from webui.context import audit, chosen_project, db, ext

bp = Blueprint("settings_qualify", __name__, url_prefix="/settings/target-calls")
WEEKDAYS = ("1", "2", "3", "4", "5", "6", "7")


def day_names() -> dict[str, str]:
    """ISO weekday digit → its short name in the page's language."""
    names = get_day_names("abbreviated", locale=get_locale() or "en")
    return {d: names[int(d) - 1] for d in WEEKDAYS}


def _rule_snapshot(r: TargetRule) -> dict:
    return {"name": r.name, "enabled": r.enabled, "position": r.position, "min_talk_seconds": r.min_talk_seconds,
            "first_call_only": r.first_call_only, "source_id": r.source_id, "campaign_id": r.campaign_id,
            "queue": r.queue, "tag_id": r.tag_id, "weekdays": r.weekdays,
            "time_from": r.time_from.strftime("%H:%M") if r.time_from else None,
            "time_to": r.time_to.strftime("%H:%M") if r.time_to else None, "mark_target": r.mark_target,
            "add_tags": [t.name for t in r.add_tags]}


def _rule_form(rule: TargetRule | None) -> dict:
    """The rule form's values: the rule's, or a new rule's."""
    if rule is None:
        return {"name": "", "position": "100", "enabled": True, "min_talk_seconds": "", "first_call_only": False,
                "source_id": "", "campaign_id": "", "queue": "", "tag_id": "", "weekdays": "1234567",
                "time_from": "", "time_to": "", "mark_target": True, "add_tag_ids": []}
    snap = _rule_snapshot(rule)
    return {**{k: ("" if v is None else v) for k, v in snap.items()}, "position": str(rule.position),
            "source_id": rule.source_id or "", "campaign_id": rule.campaign_id or "", "tag_id": rule.tag_id or "",
            "add_tag_ids": [t.id for t in rule.add_tags]}


def _typed_rule(f) -> dict:
    return {"name": f.get("name", ""), "position": f.get("position", ""), "enabled": f.get("enabled") == "on",
            "min_talk_seconds": f.get("min_talk_seconds", "").strip(), "first_call_only": f.get("first_call_only") == "on",
            "source_id": f.get("source_id", ""), "campaign_id": f.get("campaign_id", ""),
            "queue": f.get("queue", ""), "tag_id": f.get("tag_id", ""),
            "weekdays": "".join(d for d in WEEKDAYS if d in f.getlist("weekdays")),
            "time_from": f.get("time_from", ""), "time_to": f.get("time_to", ""),
            "mark_target": f.get("mark_target") == "on",
            "add_tag_ids": [int(t) for t in f.getlist("add_tag_ids") if t.isdigit()]}


def _page(project: Project | None, projects, rule_form=None, editing=None, tag_errors=None, status=200):
    s = db()
    ctx = {"projects": projects, "project": project, "weekdays": WEEKDAYS, "day_names": day_names()}
    if project is not None:
        ctx.update(
            rules=rule_settings.rules_of(s, project), tags=tag_settings.tags_of(s, project),
            usage=tag_settings.usage(s, project),
            sources=list(s.scalars(select(Source).where(Source.project_id == project.id).order_by(Source.name))),
            campaigns=list(s.execute(select(Campaign.id, Campaign.name, Source.name)
                                     .join(Source, Source.id == Campaign.source_id)
                                     .where(Campaign.project_id == project.id).order_by(Source.name, Campaign.name))),
            editing=editing, form=rule_form or _rule_form(editing))
    return render_template("settings/qualify.html", **ctx), status


@bp.route("")
@roles_required("admin")
def index():
    projects = list(db().scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    editing = None
    if project is not None and request.args.get("edit", "").isdigit():
        editing = db().get(TargetRule, int(request.args["edit"]))
        if editing is None or editing.project_id != project.id:
            abort(404)
    return _page(project, projects, editing=editing)[0]


def _project(project_id: int) -> Project:
    return db().get(Project, project_id) or abort(404)


def _rule_error(e: ServiceError) -> str:
    text = str(e)
    said = [("name is empty", _("Give the rule a name.")),
            ("does nothing", _("The rule does nothing: let it mark target calls or add a tag.")),
            ("talk time", _("Talk time: a whole number of seconds, 0 to 86400.")),
            ("weekdays", _("Choose the weekdays.")), ("invalid time", _("Times are HH:MM.")),
            ("position", _("The position is a whole number.")),
            ("campaign", _("The campaign does not belong to the chosen source.")),
            ("longer than", _("A name is too long."))]
    return next((msg for key, msg in said if key in text), text)


@bp.route("/<int:project_id>/rules", methods=["POST"], defaults={"rule_id": None})
@bp.route("/<int:project_id>/rules/<int:rule_id>", methods=["POST"])
@roles_required("admin")
def save_rule(project_id: int, rule_id: int | None):
    s = db()
    project = _project(project_id)
    rule = None
    if rule_id is not None:
        rule = s.get(TargetRule, rule_id)
        if rule is None or rule.project_id != project.id:
            abort(404)
    typed = _typed_rule(request.form)
    before = _rule_snapshot(rule) if rule is not None else None
    try:
        saved = rule_settings.save_rule(s, project, rule, **typed)
    except ServiceError as e:
        s.rollback()
        flash(_rule_error(e), "error")
        projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
        editing = s.get(TargetRule, rule_id) if rule_id is not None else None
        return _page(project, projects, rule_form=typed, editing=editing, status=400)
    audit("update" if before else "create", "target_rule", saved.id,
          {"before": before, "after": _rule_snapshot(saved)} if before else _rule_snapshot(saved))
    s.commit()
    flash(_("Saved. The rules apply to calls that finish from now on; apply them again to earlier calls below."),
          "success")
    return redirect(url_for(".index", project=project.id))


@bp.route("/rules/<int:rule_id>/delete", methods=["POST"])
@roles_required("admin")
def delete_rule(rule_id: int):
    s = db()
    rule = s.get(TargetRule, rule_id) or abort(404)
    pid = rule.project_id
    audit("delete", "target_rule", rule.id, _rule_snapshot(rule))
    s.delete(rule)
    s.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for(".index", project=pid))


def _tag_error(e: ServiceError) -> str:
    text = str(e)
    said = [("name is empty", _("Give the tag a name.")), ("already exists", _("This tag already exists.")),
            ("colour", _("The colour is #rrggbb.")), ("longer than", _("A name or description is too long."))]
    return next((msg for key, msg in said if key in text), text)


@bp.route("/<int:project_id>/tags", methods=["POST"], defaults={"tag_id": None})
@bp.route("/<int:project_id>/tags/<int:tag_id>", methods=["POST"])
@roles_required("admin")
def save_tag(project_id: int, tag_id: int | None):
    s = db()
    project = _project(project_id)
    tag = None
    if tag_id is not None:
        tag = s.get(Tag, tag_id)
        if tag is None or tag.project_id != project.id:
            abort(404)
    f = request.form
    try:
        saved = tag_settings.save_tag(s, project, tag, name=f.get("name", ""), color_=f.get("color", ""),
                                      description=f.get("description", ""), offered=f.get("offered") == "on")
    except ServiceError as e:
        s.rollback()
        flash(_tag_error(e), "error")
        return redirect(url_for(".index", project=project.id))
    audit("update" if tag_id else "create", "tag", saved.id,
          {"name": saved.name, "color": saved.color, "description": saved.description, "offered": saved.offered})
    s.commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".index", project=project.id))


@bp.route("/tags/<int:tag_id>/delete", methods=["POST"])
@roles_required("admin")
def delete_tag(tag_id: int):
    """Delete a tag: it leaves every call that carried it and every rule that added it; a rule
    whose condition was this tag is deleted with it."""
    s = db()
    tag = s.get(Tag, tag_id) or abort(404)
    pid = tag.project_id
    audit("delete", "tag", tag.id, {"name": tag.name})
    s.delete(tag)
    s.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for(".index", project=pid))


@bp.route("/<int:project_id>/apply", methods=["POST"])
@roles_required("admin")
def reapply(project_id: int):
    """Apply the project's rules again to its finished calls of the chosen local days."""
    project = _project(project_id)
    try:
        first = dateinput.parse(request.form.get("from"))
        last = dateinput.parse(request.form.get("to")) or first
    except dateinput.DateInputError as e:
        flash(str(e), "error")
        return redirect(url_for(".index", project=project.id))
    if first is None or last < first:
        flash(_("Choose the first and the last day."), "error")
        return redirect(url_for(".index", project=project.id))
    tz = zone(project)
    since, until = day_bounds(tz, first)[0], day_bounds(tz, last)[1]
    pid, key = project.id, project.key
    # reapply() writes in transactions of its own: the request's read transaction ends first
    # (on SQLite an open reader would keep its commits waiting)
    db().rollback()
    summary = qualify_apply.reapply(write_sessionmaker(ext()["sessionmaker"]), since, until, pid)
    audit("apply", "target_rule", None, {"project": key, "from": first.isoformat(),
                                         "to": last.isoformat(), "calls": summary.calls,
                                         "targets": summary.targets, "changed": summary.changed})
    db().commit()
    flash(_("Rules applied to %(calls)s calls: %(targets)s target calls, %(changed)s changed.",
            calls=summary.calls, targets=summary.targets, changed=summary.changed), "success")
    return redirect(url_for(".index", project=pid))


@bp.app_template_filter("rule_conditions")
def rule_conditions(rule: TargetRule) -> list[str]:
    """The conditions a rule sets, in words (the rules table)."""
    r = Rule.from_row(rule)
    out = []
    if r.min_talk_seconds is not None:
        out.append(_("talk ≥ %(n)s s", n=r.min_talk_seconds))
    if r.first_call_only:
        out.append(_("first call"))
    if rule.source_id is not None:
        src = db().get(Source, rule.source_id)
        out.append(_("source: %(name)s", name=src.name if src else "?"))
    if rule.campaign_id is not None:
        camp = db().get(Campaign, rule.campaign_id)
        out.append(_("campaign: %(name)s", name=camp.name if camp else "?"))
    if r.queue:
        out.append(_("queue: %(name)s", name=r.queue))
    if rule.tag_id is not None:
        tag = db().get(Tag, rule.tag_id)
        out.append(_("tag: %(name)s", name=tag.name if tag else "?"))
    if r.weekdays != "1234567" or r.time_from or r.time_to:
        names = day_names()
        out.append(_("when: %(days)s %(from_)s–%(to)s", days=" ".join(names[d] for d in r.weekdays),
                     from_=r.time_from.strftime("%H:%M") if r.time_from else "00:00",
                     to=r.time_to.strftime("%H:%M") if r.time_to else "24:00"))
    return out or [_("every finished call")]

"""Settings (admin only): generic list/create/edit pages for each entity, and the audit log."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from calltracking import entities
from calltracking import sources as auto_sources
from calltracking.models import AuditLog, Source, TrackingNumber

from webui.auth import roles_required
from webui.context import audit, config, current_user, db
from webui.crud import FormError, display, form_value, parse_form
from webui.settings_specs import BY_SLUG, ENTITIES
from webui.settings_specs import sources as sources_choices

bp = Blueprint("settings", __name__, url_prefix="/settings")
AUDIT_PAGE = 100


def _entity(slug):
    e = BY_SLUG.get(slug)
    if e is None:
        abort(404)
    return e


def _snapshot(entity, obj) -> dict:
    out = {"id": obj.id}
    for f in entity.fields:
        if f.kind == "password":
            continue
        out[f.name] = display(form_value(obj, f))
    return out


def _choices(entity, editing):
    s = db()
    return {f.name: (f.choices(s) if f.choices else []) for f in entity.form_fields(editing)}


@bp.route("/")
@roles_required("admin")
def index():
    return render_template("settings/index.html", entities=ENTITIES)


@bp.route("/<slug>", methods=["GET", "POST"])
@roles_required("admin")
def listing(slug):
    entity = _entity(slug)
    s = db()
    errors, submitted = {}, None
    if request.method == "POST":
        submitted = request.form
        try:
            values = parse_form(entity, s, request.form, editing=False)
            obj = entity.create(s, values)
            s.flush()
            audit("create", entity.slug, obj.id, _snapshot(entity, obj))
            s.commit()
            flash(_("Created."), "success")
            return redirect(url_for("settings.listing", slug=slug))
        except FormError as e:
            s.rollback()
            errors = e.errors
        except ValueError as e:      # entities.ServiceError, phone.InvalidNumber
            s.rollback()
            errors = {"": str(e)}
        except IntegrityError as e:
            s.rollback()
            errors = {"": _("This conflicts with an existing entry (%(detail)s).",
                            detail=str(e.orig).splitlines()[0][:200])}
    stmt = entity.query(s, request.args) if entity.query else select(entity.model)
    if entity.order_by is not None and not entity.query:
        order = entity.order_by if isinstance(entity.order_by, tuple) else (entity.order_by,)
        stmt = stmt.order_by(*order)
    rows = list(s.scalars(stmt.limit(5000)))
    values = {f.name: (submitted.get(f.name) if submitted is not None else form_value(None, f))
              for f in entity.form_fields(False)}
    if submitted is not None:
        for f in entity.form_fields(False):
            if f.kind == "bool":
                values[f.name] = submitted.get(f.name) == "yes"
    return render_template("settings/list.html", entity=entity, rows=rows, display=display,
                           fields=entity.form_fields(False), values=values,
                           choices=_choices(entity, False), errors=errors,
                           status=400 if errors else 200), (400 if errors else 200)


@bp.route("/<slug>/<int:obj_id>", methods=["GET", "POST"])
@roles_required("admin")
def edit(slug, obj_id):
    entity = _entity(slug)
    if entity.update is None:
        abort(404)
    s = db()
    obj = s.get(entity.model, obj_id)
    if obj is None:
        abort(404)
    errors = {}
    fields = entity.form_fields(True)
    values = {f.name: form_value(obj, f) for f in fields}
    if request.method == "POST":
        before = _snapshot(entity, obj)
        try:
            parsed = parse_form(entity, s, request.form, editing=True)
            entity.update(s, obj, parsed)
            s.flush()
            audit("update", entity.slug, obj.id, {"before": before, "after": _snapshot(entity, obj)})
            s.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("settings.listing", slug=slug))
        except FormError as e:
            errors = e.errors
        except ValueError as e:      # entities.ServiceError, phone.InvalidNumber
            errors = {"": str(e)}
        except IntegrityError as e:
            errors = {"": _("This conflicts with an existing entry (%(detail)s).",
                            detail=str(e.orig).splitlines()[0][:200])}
        s.rollback()
        values = {f.name: (request.form.get(f.name) if f.kind != "bool" else request.form.get(f.name) == "yes")
                  for f in fields}
    return render_template("settings/edit.html", entity=entity, obj=obj, fields=fields, values=values,
                           choices=_choices(entity, True), errors=errors), (400 if errors else 200)


@bp.route("/<slug>/<int:obj_id>/toggle", methods=["POST"])
@roles_required("admin")
def toggle(slug, obj_id):
    entity = _entity(slug)
    s = db()
    obj = s.get(entity.model, obj_id)
    if obj is None or not entity.toggle:
        abort(404)
    new = not getattr(obj, entity.toggle)
    if entity.slug == "users":
        try:
            entities.check_user_change(obj, obj.role, new, acting=current_user())
        except entities.ServiceError:
            flash(_("You cannot deactivate yourself."), "error")
            return redirect(url_for("settings.listing", slug=slug))
    setattr(obj, entity.toggle, new)
    audit("enable" if new else "disable", entity.slug, obj.id, _snapshot(entity, obj))
    s.commit()
    return redirect(url_for("settings.listing", slug=slug))


@bp.route("/numbers/<int:obj_id>/retire", methods=["POST"])
@roles_required("admin")
def retire(obj_id):
    s = db()
    tn = s.get(TrackingNumber, obj_id)
    if tn is None:
        abort(404)
    if tn.active:
        entities.retire_number(s, tn.number, region=config().general.default_region)
        audit("retire", "numbers", tn.id, {"number": tn.number})
        s.commit()
        flash(_("Number %(n)s retired; calls to it keep ringing the default queue.", n=tn.number), "success")
    return redirect(url_for("settings.listing", slug="numbers"))


@bp.route("/<slug>/<int:obj_id>/delete", methods=["POST"])
@roles_required("admin")
def delete(slug, obj_id):
    entity = _entity(slug)
    s = db()
    obj = s.get(entity.model, obj_id)
    if obj is None or not entity.delete:
        abort(404)
    snap = _snapshot(entity, obj)
    s.delete(obj)
    audit("delete", entity.slug, obj_id, snap)
    s.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for("settings.listing", slug=slug))


@bp.route("/sources/merge", methods=["GET", "POST"])
@roles_required("admin")
def merge_sources():
    """Merge one source into another (:func:`calltracking.sources.merge`), or show the form."""
    s = db()
    errors, values = {}, {"source_id": request.args.get("source_id", ""), "into_id": ""}
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        src, into = (s.get(Source, int(v)) if v.isdigit() else None for v in values.values())
        if src is None or into is None:
            errors = {"": _("Choose both sources.")}
        else:
            try:
                moved = auto_sources.merge(s, src, into)
                audit("merge", "sources", into.id, moved)
                s.commit()
                flash(_("Source %(a)s merged into %(b)s: %(calls)s calls and %(visits)s visits moved.",
                        a=moved["from"], b=moved["into"], calls=moved["calls"], visits=moved["visits"]), "success")
                return redirect(url_for("settings.listing", slug="sources"))
            except ValueError as e:      # calltracking.sources.SourceError
                s.rollback()
                errors = {"": str(e)}
    return render_template("settings/source_merge.html", sources=sources_choices(s), values=values,
                           errors=errors), (400 if errors else 200)


@bp.route("/audit")
@roles_required("admin")
def audit_log():
    before = request.args.get("before", type=int)
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(AUDIT_PAGE + 1)
    if before:
        stmt = stmt.where(AuditLog.id < before)
    rows = list(db().scalars(stmt))
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    return render_template("settings/audit.html", rows=rows,
                           next_before=rows[-1].id if more and rows else None)

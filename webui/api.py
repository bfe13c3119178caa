"""REST API (JSON, token auth): calls, numbers, reports; described by /api/openapi.json.

Authenticate with ``Authorization: Bearer <token>`` (a user's token, made on the Account page
or the Users settings page); the token acts with that user's role. CSRF does not apply
(no cookies are accepted here).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from calltracking.calls import export as call_export
from calltracking.calls import journal as call_journal
from calltracking.calls import visibility
from calltracking.jobs import conversation
from calltracking.attribution import numbers_csv
from calltracking import entities
from calltracking.models import Call, TrackingNumber
from calltracking.transcripts import view as transcript_view

from webui.auth import api_auth
from webui.context import audit, config, current_user, db
from webui.display import parse_money
from webui.filters import parse_filter
from webui.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api")


def _call_json(c: Call) -> dict:
    d = call_export.call_to_dict(c, with_legs=True)
    d["id"] = c.id
    d["value"] = None if c.value is None else str(c.value)
    d["comment"] = c.comment
    d["reason"] = c.closed_reason
    return d


def _err(msg: str, code: int = 400):
    return jsonify({"error": msg}), code


@bp.route("/openapi.json")
def openapi():
    return jsonify(openapi_document(current_app))


def _one(rows: list, what: str, value: str):
    if not rows:
        raise call_journal.JournalError(f"unknown {what} {value!r}")
    if len(rows) > 1:
        raise call_journal.JournalError(f"{what} {value!r} is ambiguous: give its id or the project")
    return rows[0].id


def _lookup(stmt, model, what: str, value: str, *, by_key=False):
    """``value`` as an id (digits) or a name (a project's key or name): the one row's id."""
    from sqlalchemy import or_

    value = value.strip()
    names = [model.name == value] + ([model.key == value] if by_key else [])
    cond = or_(*names, model.id == int(value)) if value.isdigit() else or_(*names)
    rows = list(db().scalars(stmt.where(cond)))
    if len(rows) > 1 and value.isdigit():          # an id wins over a name made of digits
        rows = [r for r in rows if r.id == int(value)]
    return _one(rows, what, value)


def _filter_args(args):
    """The query string with project (key or id), source, campaign and operator (name or id) as ids."""
    from sqlalchemy import select
    from calltracking.models import Campaign, Operator, Project, Source

    out = args.copy()
    if (args.get("project") or "").strip():
        out["project"] = str(_lookup(select(Project), Project, "project", args["project"], by_key=True))
    if (args.get("source") or "").strip():
        stmt = select(Source)
        if out.get("project"):
            stmt = stmt.where(Source.project_id == int(out["project"]))
        out["source"] = str(_lookup(stmt, Source, "source", args["source"]))
    if (args.get("campaign") or "").strip():
        stmt = select(Campaign)
        if out.get("source"):
            stmt = stmt.where(Campaign.source_id == int(out["source"]))
        elif out.get("project"):
            stmt = stmt.where(Campaign.project_id == int(out["project"]))
        out["campaign"] = str(_lookup(stmt, Campaign, "campaign", args["campaign"]))
    if (args.get("operator") or "").strip():
        out["operator"] = str(_lookup(select(Operator), Operator, "operator", args["operator"]))
    return out


@bp.route("/calls")
@api_auth()
def calls():
    try:
        flt, _tz = parse_filter(_filter_args(request.args))
        limit = request.args.get("limit", default=100, type=int)
        pg = call_journal.page(db(), flt, after=request.args.get("after"),
                               before=request.args.get("before"), limit=max(1, min(limit or 100, 1000)))
    except call_journal.JournalError as e:
        return _err(str(e))
    return jsonify({"calls": [_call_json(c) for c in pg.calls], "next": pg.next_cursor,
                    "prev": pg.prev_cursor})


@bp.route("/projects")
@api_auth()
def projects():
    from sqlalchemy import select
    from calltracking.models import Project

    rows = db().scalars(select(Project).order_by(Project.name, Project.id))
    return jsonify({"projects": [{"id": p.id, "key": p.key, "name": p.name, "timezone": p.timezone,
                                  "currency": p.currency} for p in rows]})


def _project_arg():
    """The ``project`` query argument (key or id) as an id, or None; raises JournalError."""
    from sqlalchemy import select
    from calltracking.models import Project

    value = (request.args.get("project") or "").strip()
    return _lookup(select(Project), Project, "project", value, by_key=True) if value else None


@bp.route("/sources")
@api_auth()
def sources():
    from sqlalchemy import select
    from calltracking.models import Campaign, Source

    try:
        project_id = _project_arg()
    except call_journal.JournalError as e:
        return _err(str(e), 404)
    stmt = select(Source).order_by(Source.project_id, Source.name)
    if project_id is not None:
        stmt = stmt.where(Source.project_id == project_id)
    rows = list(db().scalars(stmt))
    camps: dict[int, list] = {}
    if rows:
        for c in db().scalars(select(Campaign).where(Campaign.source_id.in_([r.id for r in rows]))
                              .order_by(Campaign.name)):
            camps.setdefault(c.source_id, []).append({"id": c.id, "name": c.name, "active": c.active})
    return jsonify({"sources": [{"id": r.id, "project": r.project.key, "name": r.name, "channel": r.channel,
                                 "active": r.active, "campaigns": camps.get(r.id, [])} for r in rows]})


@bp.route("/campaigns")
@api_auth()
def campaigns():
    from sqlalchemy import select
    from calltracking.models import Campaign, Source

    try:
        project_id = _project_arg()
        source_arg = (request.args.get("source") or "").strip()
        stmt = select(Source)
        if project_id is not None:
            stmt = stmt.where(Source.project_id == project_id)
        source_id = _lookup(stmt, Source, "source", source_arg) if source_arg else None
    except call_journal.JournalError as e:
        return _err(str(e), 404)
    stmt = select(Campaign).order_by(Campaign.project_id, Campaign.source_id, Campaign.name)
    if project_id is not None:
        stmt = stmt.where(Campaign.project_id == project_id)
    if source_id is not None:
        stmt = stmt.where(Campaign.source_id == source_id)
    return jsonify({"campaigns": [{"id": c.id, "project": c.source.project.key, "source": c.source.name,
                                   "source_id": c.source_id, "name": c.name, "utm_campaign": c.utm_campaign,
                                   "active": c.active} for c in db().scalars(stmt)]})


@bp.route("/operators")
@api_auth()
def operators():
    """Every operator; an operator's token sees only its own operator."""
    from sqlalchemy import select
    from calltracking.models import Operator

    stmt = select(Operator).order_by(Operator.name, Operator.id)
    user = current_user()
    if user.role == "operator":
        stmt = stmt.where(Operator.id == (user.operator_id if user.operator_id is not None else -1))
    return jsonify({"operators": [{"id": o.id, "name": o.name, "extension": o.extension, "active": o.active}
                                  for o in db().scalars(stmt)]})


def _visible_call(call_id: int):
    call = db().get(Call, call_id)
    if call is None:
        return None, _err("call not found", 404)
    user = current_user()
    if not visibility.may_see(db(), call.id, user.role, user.operator_id):
        return None, _err("this call is not yours", 403)
    return call, None


@bp.route("/calls/<int:call_id>")
@api_auth()
def call_detail(call_id):
    call, err = _visible_call(call_id)
    if err:
        return err
    return jsonify({**_call_json(call), "conversation": conversation.as_json(call.recording_info),
                    "transcript": transcript_view.as_json(db(), call.id)})


@bp.route("/calls/<int:call_id>", methods=["PATCH"])
@api_auth()
def call_update(call_id):
    from webui.journal import set_tags

    call, err = _visible_call(call_id)
    if err:
        return err
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _err("expected a JSON object")
    unknown = set(data) - {"tags", "value", "comment", "reason"}
    if unknown:
        return _err(f"unknown field(s): {', '.join(sorted(unknown))}")
    try:
        if "value" in data:
            call.value = None if data["value"] in (None, "") else parse_money(str(data["value"]))
        if "tags" in data:
            if not isinstance(data["tags"], list) or not all(isinstance(t, str) for t in data["tags"]):
                return _err("tags: expected a list of strings")
            if call.project_id is None and data["tags"]:
                return _err("this call has no project: tags cannot be stored")
            if call.project_id is not None:
                set_tags(call, data["tags"])
        if "comment" in data:
            call.comment = str(data["comment"] or "")[:5000]
        if "reason" in data:
            call.closed_reason = str(data["reason"] or "")[:40]
    except ValueError as e:
        return _err(str(e))
    audit("update", "call", call.id, {"api": True, **call_export.audit_values(call, data)})
    db().commit()
    return jsonify(_call_json(call))


def _number_json(tn: TrackingNumber) -> dict:
    return {"id": tn.id, "number": tn.number, "project": tn.project.key, "kind": tn.kind,
            "source": tn.source.name if tn.source else None,
            "campaign": tn.campaign.name if tn.campaign else None,
            "pool": tn.pool.name if tn.pool else None, "description": tn.description,
            "callerid_prefix": tn.callerid_prefix, "record": tn.record, "active": tn.active}


@bp.route("/numbers")
@api_auth("admin", "supervisor")
def numbers():
    from sqlalchemy import select

    stmt = select(TrackingNumber).order_by(TrackingNumber.number)
    if request.args.get("all") not in ("1", "yes", "true"):
        stmt = stmt.where(TrackingNumber.active.is_(True))
    project = request.args.get("project")
    rows = [n for n in db().scalars(stmt) if not project or n.project.key == project]
    return jsonify({"numbers": [_number_json(n) for n in rows]})


@bp.route("/numbers", methods=["POST"])
@api_auth("admin")
def number_create():
    s = db()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _err("expected a JSON object with number, project and source or pool")
    try:
        project = entities.get_project(s, str(data.get("project") or ""))
        source = entities.get_source(s, project, data["source"]) if data.get("source") else None
        if data.get("campaign") and source is None:
            raise entities.ServiceError("a campaign needs a source")
        campaign = entities.get_campaign(s, source, data["campaign"]) if data.get("campaign") else None
        pool = entities.get_pool(s, project, data["pool"]) if data.get("pool") else None
        tn = entities.add_number(s, project, str(data.get("number") or ""), config().general.default_region,
                                 source=source, campaign=campaign, pool=pool,
                                 description=str(data.get("description") or "")[:200],
                                 callerid_prefix=bool(data.get("callerid_prefix", True)),
                                 record=bool(data.get("record", True)))
    except ValueError as e:      # entities.ServiceError, phone.InvalidNumber
        s.rollback()
        return _err(str(e))
    audit("create", "numbers", tn.id, {"api": True, "number": tn.number})
    s.commit()
    return jsonify(_number_json(tn)), 201


@bp.route("/numbers/<number>", methods=["DELETE"])
@api_auth("admin")
def number_retire(number):
    s = db()
    try:
        tn = entities.retire_number(s, number, config().general.default_region)
    except ValueError as e:      # entities.ServiceError, phone.InvalidNumber
        s.rollback()
        return _err(str(e), 404 if "not mapped" in str(e) else 400)
    audit("retire", "numbers", tn.id, {"api": True, "number": tn.number})
    s.commit()
    return jsonify(_number_json(tn))


@bp.route("/numbers/import", methods=["POST"])
@api_auth("admin")
def number_import():
    s = db()
    text = request.get_data(as_text=True)
    try:
        res = numbers_csv.import_numbers(s, text, config().general.default_region,
                                         default_project=request.args.get("project") or None)
    except numbers_csv.ImportFailed as e:
        s.rollback()
        return jsonify({"error": str(e), "rows": [{"line": r.line, "message": r.message} for r in e.errors]}), 400
    audit("import", "numbers", None, {"api": True, "imported": res.imported})
    s.commit()
    return jsonify({"imported": res.imported, "created": res.created})


def _jsonable(v):
    import datetime as dt
    from decimal import Decimal

    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


@bp.route("/reports")
@api_auth("admin", "supervisor")
def reports_index():
    from calltracking.reports import queries

    return jsonify({"reports": list(queries.REPORTS)})


@bp.route("/reports/<name>")
@api_auth("admin", "supervisor")
def report(name):
    """One report over ``project`` (id or key; default: the first) and ``from``/``to`` (local dates)."""
    import datetime as dt

    from sqlalchemy import or_, select

    from calltracking.reports import queries
    from calltracking.db import write_scope
    from calltracking.models import Project
    from calltracking.reports.rollup import refresh_rollups

    if name not in queries.REPORTS:
        return _err(f"unknown report {name!r} (known: {', '.join(queries.REPORTS)})", 404)
    s = db()
    key = (request.args.get("project") or "").strip()
    stmt = select(Project).order_by(Project.id)
    if key:
        cond = Project.key == key
        if key.isdigit():
            cond = or_(cond, Project.id == int(key))
        stmt = stmt.where(cond)
    project = s.scalars(stmt).first()
    if project is None:
        return _err(f"project {key!r} not found" if key else "no project yet", 404)
    try:
        to = queries.parse_date(request.args.get("to"), queries.today_in(project))
        frm = queries.parse_date(request.args.get("from"), to - dt.timedelta(days=29))
        flt = queries.ReportFilter(project, frm, to)
        s.commit()      # the refresh writes in its own transaction (write lock first)
        try:
            with write_scope(current_app.extensions["calltracking"]["sessionmaker"]) as w:
                refresh_rollups(w, allow_full=False)
        except Exception:  # noqa: BLE001 - the scheduler catches up; answer with what is there
            pass
        result = queries.run_report(s, name, flt)
    except queries.ReportError as e:
        return _err(str(e))
    rows = [{k: _jsonable(v) for k, v in row.items()} for row in result.as_dicts()]
    return jsonify({"report": name, "project": project.key, "from": frm.isoformat(), "to": to.isoformat(),
                    "columns": result.columns, "rows": rows, "chart": result.chart})

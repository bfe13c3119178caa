"""Operator screen pop: the operator's current call, its source and the caller's history."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import selectinload

from calltracking.models import Call, CallLeg, Operator, VisitorSession

from webui.auth import roles_required
from webui.context import current_user, db

bp = Blueprint("screenpop", __name__)


def current_call(operator_id: int) -> Call | None:
    """The newest in-progress call answered by, or ringing/talking at, this operator."""
    live_leg = exists().where(CallLeg.call_id == Call.id, CallLeg.operator_id == operator_id,
                              CallLeg.ended_at.is_(None))
    stmt = (select(Call).where(Call.status == "in_progress",
                               or_(Call.operator_id == operator_id, live_leg))
            .order_by(Call.started_at.desc(), Call.id.desc()).limit(1)
            .options(selectinload(Call.project), selectinload(Call.source), selectinload(Call.campaign),
                     selectinload(Call.tags)))
    return db().scalars(stmt).first()


@bp.route("/screenpop")
@roles_required()
def index():
    user = current_user()
    operator_id = user.operator_id
    operators = []
    if user.role in ("admin", "supervisor"):
        operators = list(db().scalars(select(Operator).where(Operator.active.is_(True)).order_by(Operator.name)))
        operator_id = request.args.get("operator", type=int) or operator_id
    operator = db().get(Operator, operator_id) if operator_id else None
    if operator_id and operator is None:
        abort(404)
    call = current_call(operator.id) if operator else None
    visitor = db().get(VisitorSession, call.session_id) if call and call.session_id else None
    history = []
    if call is not None and call.caller_number:
        history = list(db().scalars(
            select(Call).where(Call.caller_number == call.caller_number, Call.id != call.id)
            .order_by(Call.started_at.desc()).limit(10)
            .options(selectinload(Call.source), selectinload(Call.tags))))
    return render_template("screenpop/index.html", operator=operator, operators=operators, call=call,
                           visitor=visitor, history=history)

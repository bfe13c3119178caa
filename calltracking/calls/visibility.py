"""Which calls a user may see: the one rule for the journal, the call card, its history and the API.

An administrator or a supervisor sees every call. An operator sees *their own calls*: the calls
they answered (``calls.operator_id``) and the calls they were rung for or transferred to (a leg
with their ``operator_id``). An operator user not linked to an operator sees none. The rule is
written once, as SQL (:func:`own_calls`); :func:`may_see` asks the database with it.
"""
from __future__ import annotations

from sqlalchemy import exists, false, or_, select
from sqlalchemy.orm import Session

from calltracking.models import Call, CallLeg


def own_calls(operator_id: int | None):
    """WHERE term: the calls of operator ``operator_id`` (none when ``None``)."""
    if operator_id is None:
        return false()
    return or_(Call.operator_id == operator_id,
               exists().where(CallLeg.call_id == Call.id, CallLeg.operator_id == operator_id))


def visible_to(role: str, operator_id: int | None) -> list:
    """WHERE terms limiting calls to those a user of ``role`` (linked to ``operator_id``) may see."""
    return [own_calls(operator_id)] if role == "operator" else []


def may_see(session: Session, call_id: int, role: str, operator_id: int | None) -> bool:
    """Whether that user may open call ``call_id`` (the same rule as :func:`visible_to`)."""
    terms = visible_to(role, operator_id)
    if not terms:
        return True
    return session.scalar(select(Call.id).where(Call.id == call_id, *terms)) is not None

"""The PBX side of a callback attempt: the dialplan variables, the call record's attribution,
and what the call record says about the attempt.

The dialer passes ``CT_CALLBACK_REQUEST`` = the attempt's token in the Originate; the include's
``[calltracking-callback-request]`` context sets ``CT_CALLBACK_OPERATOR_AT`` (epoch seconds)
when an operator answered and the visitor is dialled, ``CT_CALLBACK_VISITOR_AT`` when the
visitor answered (on the visitor's channel, Dial()'s ``U()``), and ``CT_CALLBACK_DIALSTATUS``
when the visitor's Dial() ended unanswered. The AMI listener keeps every ``CT_*`` variable of a
call; :mod:`calltracking.callstore.store` asks :func:`attribution` for the call's attribution
(``callback``, the request's project, source, campaign and visit) and hands each stored record
to :func:`record_attempts`.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.attribution.lookup import CERTAIN
from calltracking.enums import AttributionKind, CallStatus
from calltracking.models import CallbackAttempt, CallbackRequest

REQUEST_VAR = "CT_CALLBACK_REQUEST"
OPERATOR_AT_VAR = "CT_CALLBACK_OPERATOR_AT"
VISITOR_AT_VAR = "CT_CALLBACK_VISITOR_AT"
DIALSTATUS_VAR = "CT_CALLBACK_DIALSTATUS"
CONTEXT = "calltracking-callback-request"


def token_of(ct: dict) -> str:
    """The attempt token a call carries ('' for any other call); only what a token can be."""
    raw = (ct.get(REQUEST_VAR) or "").strip()
    return raw if 0 < len(raw) <= 40 and raw.isalnum() else ""


def _attempt(session: Session, token: str) -> Optional[CallbackAttempt]:
    return session.scalars(select(CallbackAttempt).where(CallbackAttempt.token == token)).first()


def attribution(session: Session, token: str) -> Optional[dict]:
    """The ``calls`` columns of the attribution of the attempt ``token``'s call (None: no such
    attempt): ``callback``, the request's project, source, campaign and visit; time to call =
    the visitor's time on site before the request."""
    att = _attempt(session, token)
    if att is None:
        return None
    req = session.get(CallbackRequest, att.request_id)
    return dict(project_id=req.project_id, tracking_number_id=None, did="", source_id=req.source_id,
                campaign_id=req.campaign_id, session_id=req.session_id, attribution=AttributionKind.CALLBACK,
                attribution_confidence=CERTAIN, candidate_count=None,
                time_to_call_seconds=req.time_on_site_seconds, record=False)


def _epoch(raw: str | None) -> Optional[dt.datetime]:
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    if not 1e9 < value < 1e10:
        return None
    return dt.datetime.fromtimestamp(value, dt.timezone.utc)


def _utc(ts: Optional[float]) -> Optional[dt.datetime]:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts is not None else None


def record_attempts(session: Session, records: dict[int, dict]) -> int:
    """Copy what stored call records (call id -> ``CallState.record()``) say onto their
    attempts: the call, when an operator answered (the variable, else the call's answer), when
    the visitor answered, when the call ended. Returns the attempts changed."""
    n = 0
    for call_id, rec in records.items():
        token = token_of(rec.get("ct") or {})
        att = _attempt(session, token) if token else None
        if att is None:
            continue
        ct = rec["ct"]
        att.call_id = call_id
        att.operator_answered_at = _epoch(ct.get(OPERATOR_AT_VAR)) or _utc(rec.get("answered_at"))
        att.visitor_answered_at = _epoch(ct.get(VISITOR_AT_VAR))
        if rec.get("status") != CallStatus.IN_PROGRESS:
            att.ended_at = _utc(rec.get("ended_at")) or att.ended_at
        n += 1
    return n

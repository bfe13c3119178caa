"""Unreached callback requests in the missed-calls worklist: open until an operator calls the
visitor back (click-to-call from the worklist) or marks the request handled."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.enums import CallbackStatus
from calltracking.models import CallbackRequest


def unreached(session: Session, *, project_id: Optional[int] = None, state: str = "open",
              start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
              limit: int = 200) -> list[CallbackRequest]:
    """Unreached requests, latest first: ``open`` (not handled), ``closed`` (handled) or ``all``;
    ``start``/``end`` bound when they were requested (end exclusive)."""
    q = select(CallbackRequest).where(CallbackRequest.status == CallbackStatus.UNREACHED)
    if project_id:
        q = q.where(CallbackRequest.project_id == project_id)
    if state == "open":
        q = q.where(CallbackRequest.handled_at.is_(None))
    elif state == "closed":
        q = q.where(CallbackRequest.handled_at.is_not(None))
    if start is not None:
        q = q.where(CallbackRequest.requested_at >= start)
    if end is not None:
        q = q.where(CallbackRequest.requested_at < end)
    return list(session.scalars(q.order_by(CallbackRequest.requested_at.desc(), CallbackRequest.id.desc())
                                .limit(limit)))


def mark_handled(session: Session, req: CallbackRequest, username: str, now: dt.datetime) -> None:
    """Close an unreached request in the worklist (called back by hand, or nothing to do)."""
    req.handled_at, req.handled_by = now, username[:100]

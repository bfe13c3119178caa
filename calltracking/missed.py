"""The missed-calls worklist.

A missed call stays *open* until either

- a later call with the same number is answered: an inbound call from that number, or an
  outbound call to it recorded by the AMI listener (a call row whose ``caller_number`` or, for
  outbound rows, ``did`` is that number; see :func:`_callback_match`), or
- someone marks it handled (``handled_at`` / ``handled_by``).

Time to callback = the first later answered call's start (or the handling time) minus the
missed call's start.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from .models import Call, utcnow

Later = aliased(Call, name="later")


def _callback_match(missed):
    """Conditions on ``Later`` that make it a callback of (or a return call for) ``missed``."""
    same_number = Later.caller_number == missed.caller_number
    direction = getattr(Call, "direction", None)
    if direction is not None:  # outbound calls recorded by the listener: the number is the callee
        same_number = or_(and_(getattr(Later, "direction") != "outbound", same_number),
                          and_(getattr(Later, "direction") == "outbound", Later.did == missed.caller_number))
    return and_(same_number, Later.status == "answered", Later.started_at > missed.started_at,
                Later.id != missed.id)


def callback_at_subquery():
    return (select(func.min(Later.started_at)).where(_callback_match(Call))
            .correlate(Call).scalar_subquery())


@dataclass
class MissedRow:
    call: Call
    callback_at: Optional[dt.datetime]

    @property
    def closed_at(self) -> Optional[dt.datetime]:
        times = [t for t in (self.callback_at, self.call.handled_at) if t is not None]
        return min(times) if times else None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def time_to_callback(self, now: dt.datetime | None = None) -> Optional[float]:
        """Seconds from the missed call to its callback/handling; for open calls, so far."""
        if self.call.started_at is None:
            return None
        end = self.closed_at or (now or utcnow())
        return max(0.0, (end - self.call.started_at).total_seconds())


def worklist(session: Session, project_id: int | None = None, state: str = "open",
             start: dt.datetime | None = None, end: dt.datetime | None = None,
             limit: int = 200) -> list[MissedRow]:
    """Missed calls, newest first. ``state``: open | closed | all."""
    cb = callback_at_subquery().label("callback_at")
    stmt = (select(Call, cb).where(Call.status == "missed", Call.started_at.is_not(None))
            .options(selectinload(Call.project), selectinload(Call.source), selectinload(Call.campaign))
            .order_by(Call.started_at.desc(), Call.id.desc()))
    if project_id is not None:
        stmt = stmt.where(Call.project_id == project_id)
    if start is not None:
        stmt = stmt.where(Call.started_at >= start)
    if end is not None:
        stmt = stmt.where(Call.started_at < end)
    exists_cb = select(Later.id).where(_callback_match(Call)).correlate(Call).exists()
    if state == "open":
        stmt = stmt.where(Call.handled_at.is_(None), ~exists_cb)
    elif state == "closed":
        stmt = stmt.where(or_(Call.handled_at.is_not(None), exists_cb))
    stmt = stmt.limit(max(1, min(limit, 5000)))
    return [MissedRow(c, t) for c, t in session.execute(stmt)]


def mark_handled(session: Session, call: Call, username: str, at: dt.datetime | None = None) -> None:
    if call.status != "missed":
        raise ValueError("only a missed call can be marked handled")
    if call.handled_at is None:
        call.handled_at = at or utcnow()
        call.handled_by = username

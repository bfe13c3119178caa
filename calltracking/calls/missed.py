"""The missed-calls worklist.

A missed call stays *open* until either

- a later call with that number is answered: an inbound call from it (``calls``), or an
  outbound call to it that the AMI listener detected (``outbound_calls``: an operator dialled
  it from their phone or by click-to-call) in the same project or with no known project, or
- someone marks it handled (``handled_at`` / ``handled_by``).

What closed it is kept apart (:attr:`MissedRow.closed_by`): ``called_back`` when the earliest
answered later call is an outbound call to the number (someone called back), ``called_again``
when it is the caller's own later inbound call that was answered (nobody called back: the caller
rang again), ``handled`` when "Mark handled" came first.

``callback_at`` = the start of the earliest such later answered call, inbound or outbound;
time to callback = ``callback_at`` (or the handling time, whichever is first) minus the
missed call's start. Both lookups are index range scans: ``calls(caller_number,
started_at)`` and ``outbound_calls(number, started_at)``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from calltracking.models import Call, OutboundCall, utcnow

Later = aliased(Call, name="later")
Out = aliased(OutboundCall, name="outb")


def _callback_match(missed):
    """Conditions on ``Later`` that make it a return call (answered, later, same caller)."""
    return and_(Later.caller_number == missed.caller_number, Later.status == "answered",
                Later.started_at > missed.started_at, Later.id != missed.id)


def _outbound_match(missed):
    """Conditions on ``Out`` that make it a callback: answered, later, to that number, same project."""
    return and_(Out.number == missed.caller_number, Out.status == "answered",
                Out.started_at > missed.started_at,
                or_(Out.project_id.is_(None), Out.project_id == missed.project_id))


def inbound_callback_subquery():
    return (select(func.min(Later.started_at)).where(_callback_match(Call))
            .correlate(Call).scalar_subquery())


def outbound_callback_subquery():
    return (select(func.min(Out.started_at)).where(_outbound_match(Call))
            .correlate(Call).scalar_subquery())


@dataclass
class Callback:
    """The outbound call that called a missed caller back."""

    at: dt.datetime
    operator_name: str
    answered_at: Optional[dt.datetime]
    talk_seconds: Optional[float]
    originated_by_us: bool


@dataclass
class MissedRow:
    call: Call
    callback_at: Optional[dt.datetime]
    #: set when the first callback was an outbound call (who called back)
    outbound: Optional[Callback] = None
    #: the earliest answered later outbound call to the number (None: none)
    outbound_at: Optional[dt.datetime] = None

    @property
    def closed_by(self) -> Optional[str]:
        """``called_back`` | ``called_again`` | ``handled``; None while the call is open."""
        if self.is_open:
            return None
        if not self.called_back:
            return "handled"
        return "called_back" if self.outbound_at is not None and self.outbound_at <= self.callback_at \
            else "called_again"

    @property
    def closed_at(self) -> Optional[dt.datetime]:
        times = [t for t in (self.callback_at, self.call.handled_at) if t is not None]
        return min(times) if times else None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def called_back(self) -> bool:
        """Closed by a callback (inbound or outbound) rather than by "Mark handled"."""
        return self.callback_at is not None and (self.call.handled_at is None
                                                 or self.callback_at <= self.call.handled_at)

    def time_to_callback(self, now: dt.datetime | None = None) -> Optional[float]:
        """Seconds from the missed call to its callback/handling; for open calls, so far."""
        if self.call.started_at is None:
            return None
        end = self.closed_at or (now or utcnow())
        return max(0.0, (end - self.call.started_at).total_seconds())


def _outbound_details(session: Session, rows: list[MissedRow], outb_at: dict) -> None:
    """Fill ``MissedRow.outbound`` for rows whose first callback was an outbound call (one query)."""
    wanted = {}
    for r in rows:
        at = outb_at.get(r.call.id)
        if at is not None and r.callback_at is not None and at <= r.callback_at:
            wanted.setdefault((r.call.caller_number, at), []).append(r)
    keys = list(wanted)
    for i in range(0, len(keys), 200):
        chunk = keys[i:i + 200]
        found = session.execute(select(OutboundCall).where(
            OutboundCall.status == "answered",
            or_(*[and_(OutboundCall.number == n, OutboundCall.started_at == t) for n, t in chunk]))
            .order_by(OutboundCall.id)).scalars().all()
        for o in found:
            for r in wanted.get((o.number, o.started_at), ()):
                if r.outbound is None and (o.project_id is None or o.project_id == r.call.project_id):
                    r.outbound = Callback(o.started_at, o.operator_name, o.answered_at,
                                          float(o.talk_seconds) if o.talk_seconds is not None else None,
                                          o.originated_by_us)


def _conditions(project_id, state, start, end) -> list:
    conds = [Call.status == "missed", Call.started_at.is_not(None)]
    if project_id is not None:
        conds.append(Call.project_id == project_id)
    if start is not None:
        conds.append(Call.started_at >= start)
    if end is not None:
        conds.append(Call.started_at < end)
    exists_in = select(Later.id).where(_callback_match(Call)).correlate(Call).exists()
    exists_out = select(Out.id).where(_outbound_match(Call)).correlate(Call).exists()
    if state == "open":
        conds += [Call.handled_at.is_(None), ~exists_in, ~exists_out]
    elif state == "closed":
        conds.append(or_(Call.handled_at.is_not(None), exists_in, exists_out))
    return conds


def count(session: Session, project_id: int | None = None, state: str = "open",
          start: dt.datetime | None = None, end: dt.datetime | None = None) -> int:
    """How many missed calls :func:`worklist` lists with these filters (all pages)."""
    return session.scalar(select(func.count()).select_from(Call).where(
        *_conditions(project_id, state, start, end))) or 0


def worklist(session: Session, project_id: int | None = None, state: str = "open",
             start: dt.datetime | None = None, end: dt.datetime | None = None,
             limit: int = 200, after: tuple[dt.datetime, int] | None = None) -> list[MissedRow]:
    """Missed calls, newest first. ``state``: open | closed | all. ``after``: the
    ``(started_at, id)`` of the last row of the previous page (keyset paging)."""
    inb = inbound_callback_subquery().label("inbound_cb")
    outb = outbound_callback_subquery().label("outbound_cb")
    conds = _conditions(project_id, state, start, end)
    if after is not None:
        t, i = after
        conds.append(and_(Call.started_at <= t, or_(Call.started_at < t, Call.id < i)))
    stmt = (select(Call, inb, outb).where(*conds)
            .options(selectinload(Call.project), selectinload(Call.source), selectinload(Call.campaign))
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(max(1, min(limit, 5000))))
    rows, outb_at = [], {}
    for c, t_in, t_out in session.execute(stmt):
        times = [t for t in (t_in, t_out) if t is not None]
        rows.append(MissedRow(c, min(times) if times else None, outbound_at=t_out))
        if t_out is not None:
            outb_at[c.id] = t_out
    _outbound_details(session, rows, outb_at)
    return rows


def state_of(session: Session, call: Call) -> Optional[MissedRow]:
    """The worklist row of one missed call (the call card); None for other calls."""
    if call.status != "missed" or call.started_at is None:
        return None
    t_in = session.scalar(select(func.min(Later.started_at)).where(_callback_match(call)))
    t_out = session.scalar(select(func.min(Out.started_at)).where(_outbound_match(call)))
    times = [t for t in (t_in, t_out) if t is not None]
    row = MissedRow(call, min(times) if times else None, outbound_at=t_out)
    _outbound_details(session, [row], {call.id: t_out} if t_out is not None else {})
    return row


def outbound_to(session: Session, call: Call, limit: int = 20) -> list[OutboundCall]:
    """Outbound calls to ``call``'s number (same project or none), newest first (the call card)."""
    if not call.caller_number:
        return []
    return list(session.scalars(
        select(OutboundCall).where(OutboundCall.number == call.caller_number,
                                   or_(OutboundCall.project_id.is_(None), OutboundCall.project_id == call.project_id))
        .order_by(OutboundCall.started_at.desc(), OutboundCall.id.desc()).limit(limit)))


def mark_handled(session: Session, call: Call, username: str, at: dt.datetime | None = None) -> None:
    if call.status != "missed":
        raise ValueError("only a missed call can be marked handled")
    if call.handled_at is None:
        call.handled_at = at or utcnow()
        call.handled_by = username

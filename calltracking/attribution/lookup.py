"""Which source a call belongs to: the ORM path (AMI listener, web UI, CLI).

``attribute(session, did, at)`` finds the tracking number dialed and returns
an :class:`Attribution`:

- a static number gives its source and campaign (``static``);
- a pool number gives the visitor session that holds it now, or that held it
  most recently within the pool's hold window (``dynamic``), with the number
  of candidate sessions in that window and a confidence (1 / candidates);
- an unknown, retired or unassigned number gives ``none``; the project is
  still found when possible (a retired number's last project, or the only
  project) so the call goes to that project's default queue. A number taken
  out of a campaign keeps ringing.

Whether the caller called before is :func:`is_first_call`. The FastAGI hooks apply the
same rules on their in-memory catalogue and plain SQL (:mod:`calltracking.attribution.fast`);
``tests/agi/test_agi_core.py`` proves the two paths agree.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from calltracking import phone
from calltracking.enums import AttributionKind, NumberKind
from calltracking.models import Call, NumberPool, PoolReservation, Project, Source, TrackingNumber, VisitorSession


@dataclass
class Attribution:
    """What :func:`attribute` found for a call (ORM objects)."""

    kind: AttributionKind = AttributionKind.NONE
    did: str = ""                           # E.164 when valid, else the raw text
    project: Optional[Project] = None
    tracking_number: Optional[TrackingNumber] = None
    source: Optional[Source] = None
    campaign_id: Optional[int] = None
    visitor_session: Optional[VisitorSession] = None
    confidence: Optional[Decimal] = None
    candidate_count: Optional[int] = None

    @property
    def project_id(self) -> Optional[int]:
        return self.project.id if self.project else None

    @property
    def source_id(self) -> Optional[int]:
        return self.source.id if self.source else None

    @property
    def session_id(self) -> Optional[int]:
        return self.visitor_session.id if self.visitor_session else None

    def time_to_call(self, started_at: dt.datetime) -> Optional[Decimal]:
        """:func:`time_to_call` of a dynamic attribution (None for the others)."""
        if self.kind != AttributionKind.DYNAMIC or self.visitor_session is None:
            return None
        return time_to_call(self.visitor_session.first_seen, started_at)


def time_to_call(first_seen: dt.datetime, started_at: dt.datetime) -> Decimal:
    """Seconds from the visitor session's first page view to the call (never negative,
    to the millisecond): ``calls.time_to_call_seconds``."""
    return Decimal(str(round(max((started_at - first_seen).total_seconds(), 0.0), 3)))


def only_project(session: Session) -> Optional[Project]:
    """The project when there is exactly one (a call nothing else places goes there), else None."""
    projects = session.scalars(select(Project).limit(2)).all()
    return projects[0] if len(projects) == 1 else None


def confidence(candidates: int) -> Decimal:
    """The confidence of a dynamic attribution: 1 / the candidate sessions, to 3 decimals."""
    return (Decimal(1) / Decimal(candidates)).quantize(Decimal("0.001"))


#: The confidence of a static or promo attribution.
CERTAIN = Decimal("1.000")


def pool_holder(session: Session, number: TrackingNumber, pool: NumberPool,
                at: dt.datetime) -> tuple[Optional[VisitorSession], int]:
    """The session holding ``number`` at ``at`` (or most recently within the hold window).

    Returns ``(session or None, candidate count)``. Candidates are the
    visitors whose reservation of this number was live at some point in
    ``[at - hold, at]`` (a visitor who came back with new campaign tags keeps
    its number in a new session: still one candidate).
    """
    window_start = at - dt.timedelta(seconds=pool.hold_seconds)
    # Columns, not entities: this runs on every call to a pool number (FastAGI hot path).
    rows = session.execute(
        select(PoolReservation.session_id, VisitorSession.visitor_id)
        .join(VisitorSession, VisitorSession.id == PoolReservation.session_id)
        .where(PoolReservation.tracking_number_id == number.id,
               PoolReservation.assigned_at <= at,
               or_(PoolReservation.released_at.is_(None),
                   PoolReservation.released_at >= window_start))
        .order_by(PoolReservation.released_at.is_(None).desc(),
                  PoolReservation.last_seen_at.desc())
    ).all()
    if not rows:
        return None, 0
    return session.get(VisitorSession, rows[0].session_id), len({r.visitor_id for r in rows})


def attribute(session: Session, did: str, at: dt.datetime, region: str = "RU",
              forwarded: str = "") -> Attribution:
    """The attribution of a call to ``did`` at ``at`` (see the module docstring for the rules).
    ``forwarded``: the number that forwarded the call (cleaned: ``calls.forwarded_from``); when
    it is an active static tracking number, the call is attributed as a call to it, ``did``
    kept (the FastAGI copy: :func:`calltracking.attribution.fast.forwarded_mapping`)."""
    if forwarded.startswith("+") and session.scalars(select(TrackingNumber.id).where(
            TrackingNumber.number == forwarded, TrackingNumber.active.is_(True),
            TrackingNumber.kind == NumberKind.STATIC)).first() is not None:
        att = attribute(session, forwarded, at, region)
        att.did = phone.try_normalize(did, region) or (did or "").strip()[:32]
        return att
    e164 = phone.try_normalize(did, region)
    att = Attribution(did=e164 or (did or "").strip()[:32])
    if e164 is None:
        att.project = only_project(session)
        return att
    tn = session.scalars(select(TrackingNumber).where(TrackingNumber.number == e164,
                                                      TrackingNumber.active.is_(True))).first()
    if tn is None:
        # Retired or unknown: keep ringing, in the project it last belonged to.
        last = session.scalars(select(TrackingNumber).where(TrackingNumber.number == e164)
                               .order_by(TrackingNumber.id.desc())).first()
        att.project = last.project if last else only_project(session)
        att.tracking_number = last
        return att
    att.project = tn.project
    att.tracking_number = tn
    if tn.kind == NumberKind.STATIC:
        if tn.source_id is None:
            return att          # unassigned: default queue, attribution none
        att.kind = AttributionKind.STATIC
        att.source = tn.source
        att.campaign_id = tn.campaign_id
        att.confidence = CERTAIN
        return att
    pool = tn.pool
    holder, candidates = pool_holder(session, tn, pool, at)
    att.candidate_count = candidates
    if holder is None:
        # Nobody held it within the hold window: the pool's own source, if any.
        if pool.source_id:
            att.source = session.get(Source, pool.source_id)
        return att
    att.kind = AttributionKind.DYNAMIC
    att.visitor_session = holder
    att.source = session.get(Source, holder.source_id) if holder.source_id else (
        session.get(Source, pool.source_id) if pool.source_id else None)
    att.confidence = confidence(candidates)
    return att


def first_call_window(project_days: Optional[int], general_days: int) -> int:
    """Days back a caller's earlier call makes this one a repeat (0: ever): the project's
    ``first_call_window_days`` when set, else ``[general] first_call_window_days``."""
    return project_days or general_days


def is_first_call(session: Session, project_id: Optional[int], caller: str, started_at: dt.datetime,
                  window_days: int = 0, exclude_call_id: Optional[int] = None) -> Optional[bool]:
    """True when no earlier call from ``caller`` exists in the project (within the window).

    Returns None when the caller number is unknown (anonymous callers are
    neither first nor repeat).
    """
    if not caller or not caller.strip("+").isdigit():
        return None
    conds = [Call.caller_number == caller, Call.started_at < started_at]
    if project_id is not None:
        # "+ 0": keep the planner on ix_calls_caller_started. With the bare column SQLite
        # picks ix_calls_project_started and scans every call of the project (45 ms at
        # 20,000 calls, seconds at a million).
        conds.append(Call.project_id + 0 == project_id)
    if window_days:
        conds.append(Call.started_at >= started_at - dt.timedelta(days=window_days))
    if exclude_call_id is not None:
        conds.append(Call.id != exclude_call_id)
    earlier = session.execute(select(Call.id).where(and_(*conds)).limit(1)).first()
    return earlier is None

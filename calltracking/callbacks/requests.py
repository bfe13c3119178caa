"""A visitor's callback request: the rules that accept, schedule or refuse it, and what the
website widget is told.

:func:`create_request` applies, in order:

1. ``disabled``: the project has no callback settings or they are off.
2. ``region``: the number's region is not allowed (:func:`calltracking.callbacks.settings.regions`).
3. ``hourly_limit``: the project already accepted ``max_calls_per_hour`` requests in the last
   hour.
4. ``cooldown``: the same number was requested (in any project) less than the project's
   ``cooldown_seconds`` ago. Checked after the hourly cap: while the cap is full every
   number gets the same refusal, so the answer never tells whether a number was asked for.

Both counts are read from ``callback_requests`` inside the caller's write transaction, after
locking the project's settings row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write
transaction is ``BEGIN IMMEDIATE``, :func:`calltracking.db.write_scope`), so several processes
agree. An accepted request is attributed from the visitor's latest session like a call to the
pool number that visitor held: its source, the campaign its ``utm_campaign`` names, the
session (UTM tags, keyword, landing page) and the time on site (first page view → request).
It is ``queued`` when the schedule is open now, else ``scheduled`` for the next opening.
Refused requests are not stored.
"""
from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.attribution.lookup import time_to_call
from calltracking.callbacks import schedule as schedule_rules
from calltracking.callbacks import settings as cb_settings
from calltracking.enums import CallbackStatus
from calltracking.models import Call, CallbackRequest, CallbackSettings, Campaign, Project, VisitorSession

#: the widget's delay when a project has no time-to-call data yet
FALLBACK_DELAY_SECONDS = 60
#: the median time to call is read from this many days of calls, at most this many calls
MEDIAN_DAYS, MEDIAN_CALLS = 90, 2000
#: how long a project's median is reused (the DNI assign path asks for it on every page view;
#: bench/callbacks.py, SQLite, 20,000 calls: read 3.5 ms, cached 0.3 ms, the settings row alone 0.2 ms)
MEDIAN_TTL_SECONDS = 600


@dataclass(frozen=True)
class RequestOutcome:
    """What became of a request: ``status`` ``queued`` | ``scheduled`` | ``refused``;
    ``at`` (UTC) when it will be called; ``reason`` "" or why it was refused."""

    status: str
    request_id: Optional[int] = None
    at: Optional[dt.datetime] = None
    reason: str = ""


def _region_of(e164: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _latest_session(session: Session, project_id: int, visitor_id: Optional[str]) -> Optional[VisitorSession]:
    if not visitor_id:
        return None
    return session.scalars(
        select(VisitorSession).where(VisitorSession.project_id == project_id,
                                     VisitorSession.visitor_id == visitor_id[:64])
        .order_by(VisitorSession.last_seen.desc(), VisitorSession.id.desc()).limit(1)).first()


def _campaign_id(session: Session, vs: VisitorSession) -> Optional[int]:
    if not vs.source_id or not vs.utm_campaign:
        return None
    return session.scalars(select(Campaign.id).where(
        Campaign.source_id == vs.source_id, Campaign.active.is_(True),
        Campaign.utm_campaign == vs.utm_campaign).limit(1)).first()


def create_request(session: Session, *, project_id: int, visitor_id: str | None, phone: str,
                   client_key: str, now: dt.datetime, default_region: str = "RU") -> RequestOutcome:
    """Accept, schedule or refuse a request to call ``phone`` (E.164) back (module docstring).
    Adds the row to ``session`` (flushed, not committed); ``default_region`` is
    ``[general] default_region``, the only allowed region when the project lists none."""
    row = session.scalars(select(CallbackSettings).where(CallbackSettings.project_id == project_id)
                          .with_for_update()).first()
    if row is None or not row.enabled:
        return RequestOutcome("refused", reason="disabled")
    if _region_of(phone) not in cb_settings.regions(row, default_region):
        return RequestOutcome("refused", reason="region")
    last_hour = session.scalar(select(func.count()).select_from(CallbackRequest).where(
        CallbackRequest.project_id == project_id,
        CallbackRequest.requested_at > now - dt.timedelta(hours=1)))
    if last_hour >= row.max_calls_per_hour:
        return RequestOutcome("refused", reason="hourly_limit")
    recent = session.scalar(select(func.count()).select_from(CallbackRequest).where(
        CallbackRequest.phone == phone,
        CallbackRequest.requested_at > now - dt.timedelta(seconds=row.cooldown_seconds)))
    if recent:
        return RequestOutcome("refused", reason="cooldown")
    project = session.get(Project, project_id)
    at = schedule_rules.next_open(schedule_rules.parse(row.schedule), now, project.timezone)
    if at is None:                       # a schedule with no open minute: never callable
        return RequestOutcome("refused", reason="disabled")
    vs = _latest_session(session, project_id, visitor_id)
    req = CallbackRequest(
        project_id=project_id, visitor_id=(visitor_id or "")[:64], phone=phone, client_key=client_key[:100],
        session_id=vs.id if vs else None, source_id=vs.source_id if vs else None,
        campaign_id=_campaign_id(session, vs) if vs else None,
        time_on_site_seconds=time_to_call(vs.first_seen, now) if vs else None,
        status=CallbackStatus.PENDING, requested_at=now, next_attempt_at=at, attempts=0)
    session.add(req)
    session.flush()
    queued = at <= now
    return RequestOutcome("queued" if queued else "scheduled", req.id, at, "")


_median_cache: dict[int, tuple[float, int]] = {}
_median_lock = threading.Lock()


def median_time_to_call(session: Session, project_id: int, now: dt.datetime) -> int:
    """The project's median time to call in whole seconds (the calls of the last
    :data:`MEDIAN_DAYS` days that have one, the latest :data:`MEDIAN_CALLS`), else
    :data:`FALLBACK_DELAY_SECONDS`; reused for :data:`MEDIAN_TTL_SECONDS` per process."""
    with _median_lock:
        hit = _median_cache.get(project_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
    values = session.scalars(
        select(Call.time_to_call_seconds).where(
            Call.project_id == project_id, Call.time_to_call_seconds.is_not(None),
            Call.started_at >= now - dt.timedelta(days=MEDIAN_DAYS))
        .order_by(Call.started_at.desc()).limit(MEDIAN_CALLS)).all()
    median = int(statistics.median(Decimal(v) for v in values)) if values else FALLBACK_DELAY_SECONDS
    with _median_lock:
        _median_cache[project_id] = (time.monotonic() + MEDIAN_TTL_SECONDS, median)
    return median


def widget_config(session: Session, project_id: int, now: dt.datetime) -> dict | None:
    """What the website widget needs, or None when callbacks are off for the project:
    ``enabled``, ``delay_seconds`` (the setting, else the median time to call), ``open_now``
    and ``next_open`` (ISO UTC, None when open now or never)."""
    row = cb_settings.get(session, project_id)
    if row is None or not row.enabled:
        return None
    project = session.get(Project, project_id)
    at = schedule_rules.next_open(schedule_rules.parse(row.schedule), now, project.timezone)
    open_now = at is not None and at <= now
    delay = (row.widget_delay_seconds if row.widget_delay_seconds is not None
             else median_time_to_call(session, project_id, now))
    return {"enabled": True, "delay_seconds": int(delay), "open_now": open_now,
            "next_open": None if open_now or at is None else at.isoformat()}

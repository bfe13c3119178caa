"""The demo's website callback requests (:mod:`calltracking.demo`): callbacks on for the demo
project (weekdays 09:00-20:00, Saturday 10:00-16:00), and over the demo's days requests from
website visits: most reached (their call a record with ``attribution = callback``), some
unreached after every attempt (in the missed-calls worklist; one already handled), one waiting
for the next opening. Deterministic for a given ``rng`` and ``now``."""
from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from sqlalchemy.orm import Session

from calltracking.callbacks import settings as cb_settings
from calltracking.callbacks.schedule import next_open, parse
from calltracking.enums import AttributionKind, CallbackResult, CallbackStatus, LegOutcome
from calltracking.models import Call, CallLeg, CallbackAttempt, CallbackRequest, Project, Source, VisitorSession

SCHEDULE = "mon-fri 09:00-20:00\nsat 10:00-16:00"


def seed(session: Session, project: Project, sources: list[Source], operators: list, rng: random.Random,
         now: dt.datetime, days: int, pbx_id: str = "demo") -> dict:
    """Add the demo's callback settings and requests; returns how many of each outcome."""
    cb_settings.save(session, project.id, {"enabled": True, "schedule": SCHEDULE, "retries": 2,
                                           "retry_delay_seconds": 120, "outbound_context": "from-internal",
                                           "allowed_regions": "RU"})
    sched = parse(SCHEDULE)
    counts = {"reached": 0, "unreached": 0, "pending": 0}
    n = max(6, days * 2)
    for i in range(n):
        requested = now - dt.timedelta(days=rng.uniform(0.2, days - 0.1))
        at = next_open(sched, requested, project.timezone) or requested
        src = rng.choice(sources)
        vs = VisitorSession(project_id=project.id, visitor_id=f"cb{i}", utm_source="google", utm_medium="cpc",
                            landing_page="https://demo.example/sofas", source_id=src.id,
                            first_seen=requested - dt.timedelta(seconds=rng.randint(60, 900)), last_seen=requested)
        session.add(vs)
        session.flush()
        phone = f"+7926{rng.randrange(10**7):07d}"
        req = CallbackRequest(project_id=project.id, visitor_id=vs.visitor_id, session_id=vs.id, source_id=src.id,
                              phone=phone, client_key="demo", status=CallbackStatus.PENDING, requested_at=requested,
                              time_on_site_seconds=Decimal(f"{(requested - vs.first_seen).total_seconds():.3f}"),
                              queue="sales")
        session.add(req)
        session.flush()
        unreached = i % 5 == 3
        tries = 3 if unreached else rng.choice([1, 1, 1, 2])
        t = at + dt.timedelta(seconds=rng.uniform(2, 20))
        for k in range(1, tries + 1):
            op_at = t + dt.timedelta(seconds=rng.uniform(3, 15))
            reached = not unreached and k == tries
            vis_at = op_at + dt.timedelta(seconds=rng.uniform(4, 12)) if reached else None
            end = (vis_at + dt.timedelta(seconds=rng.uniform(40, 300))) if reached else op_at + dt.timedelta(seconds=30)
            att = CallbackAttempt(request_id=req.id, number=k, token=uuid.UUID(int=rng.getrandbits(128)).hex,
                                  queue="sales", started_at=t, operator_answered_at=op_at,
                                  visitor_answered_at=vis_at, ended_at=end,
                                  result=CallbackResult.REACHED if reached else CallbackResult.NO_ANSWER)
            session.add(att)
            if reached:
                op = rng.choice(operators)
                call = Call(pbx_id=pbx_id, linkedid=f"cb{att.token[:12]}.1", project_id=project.id,
                            caller_number=phone, source_id=src.id, session_id=vs.id, queue="sales",
                            attribution=AttributionKind.CALLBACK, attribution_confidence=Decimal("1.000"),
                            started_at=t, queued_at=t, answered_at=op_at, ended_at=end, status="answered",
                            operator_id=op.id, operator_name=op.name,
                            wait_seconds=Decimal(f"{(op_at - t).total_seconds():.3f}"),
                            queue_wait_seconds=Decimal(f"{(op_at - t).total_seconds():.3f}"),
                            talk_seconds=Decimal(f"{(end - op_at).total_seconds():.3f}"), hold_seconds=Decimal(0),
                            time_to_call_seconds=req.time_on_site_seconds, first_call=True, via_agi=False)
                session.add(call)
                session.flush()
                session.add(CallLeg(call_id=call.id, operator_id=op.id, operator_name=op.name, interface=op.interface,
                                    uniqueid=f"{call.linkedid}-x", queue="sales", rung_at=t, answered_at=op_at,
                                    ended_at=end, ring_seconds=call.wait_seconds, talk_seconds=call.talk_seconds,
                                    outcome=LegOutcome.ANSWERED))
                att.call_id = req.call_id = call.id
                req.reached_at = vis_at
            t = end + dt.timedelta(seconds=120)
        req.attempts = tries
        req.closed_at = end
        req.status = CallbackStatus.UNREACHED if unreached else CallbackStatus.REACHED
        if unreached and i == 3:
            req.handled_at, req.handled_by = end + dt.timedelta(minutes=30), "admin"
        if req.closed_at > now:                         # not over yet at ``now``: still waiting
            session.delete(req)
            continue
        counts[req.status] += 1
    waiting = CallbackRequest(project_id=project.id, phone=f"+7926{rng.randrange(10**7):07d}", client_key="demo",
                              status=CallbackStatus.PENDING, requested_at=now - dt.timedelta(minutes=3),
                              next_attempt_at=next_open(sched, now + dt.timedelta(hours=1), project.timezone),
                              source_id=sources[0].id)
    session.add(waiting)
    counts["pending"] += 1
    session.flush()
    return counts

"""Live: website callback requests on a real Asterisk 22 (docs/callbacks.md).

A request stored by :func:`calltracking.callbacks.create_request` is dialled by the ``callbacks``
job of ``calltracking run``: AMI Originate into the include's ``calltracking-callback-request``,
which rings the queue of the routing rule the request's source matches (``q_answer``: Anna);
when she answers, the visitor's number is dialled through the project's outbound context
(``[visitors]`` of tests/live/pbx/extensions.conf). The result is ONE call record with
``attribution = callback`` and the visit's source, linked to its request. A visitor who never
answers is tried again after the delay, then the request is unreached and in the worklist; a
request outside the opening hours waits for the next opening and is not dialled.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from support.live_verdict import check
from support.live_world import Placed
from support.polling import poll

pytestmark = pytest.mark.live

UTC = dt.timezone.utc
VISITOR = "+79160000901"
SILENT = "+79990000002"


@pytest.fixture(scope="module")
def cb(world):
    from calltracking import entities as svc
    from calltracking.callbacks import settings
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import RoutingRule, VisitorSession

    eng = make_engine(world.db_url)
    sm = make_sessionmaker(eng)
    with sm() as s, s.begin():
        p = svc.add_project(s, "callbacks", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Website ads", channel="ads")
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="website ads to Anna", priority=1, source_id=src.id,
                          queue="q_answer"))
        now = dt.datetime.now(UTC)
        s.add(VisitorSession(project_id=p.id, visitor_id="visitor-1", utm_source="google", utm_medium="cpc",
                             source_id=src.id, first_seen=now - dt.timedelta(seconds=80), last_seen=now))
        settings.save(s, p.id, {"enabled": True, "outbound_context": "visitors", "retries": 1,
                                "retry_delay_seconds": 30})
        pid = p.id
    world.db_put(**{"ring/101": 1, "talk/101": 12, "visitor/talk": 4})
    yield sm, pid
    eng.dispose()


def _request(sm, pid, phone, visitor="visitor-1"):
    from calltracking.callbacks import create_request

    with sm() as s, s.begin():
        out = create_request(s, project_id=pid, visitor_id=visitor, phone=phone, client_key="127.0.0.1",
                             now=dt.datetime.now(UTC))
    return out


def _closed(sm, request_id, timeout):
    from calltracking.models import CallbackRequest

    def done():
        with sm() as s:
            r = s.get(CallbackRequest, request_id)
            return r if r.status in ("reached", "unreached") else None
    return poll(done, timeout, f"callback request {request_id} to close", interval=0.5)


def test_request_reached_gives_one_callback_call(world, cb):
    from calltracking.models import Call, CallbackAttempt, OutboundCall, Source

    sm, pid = cb
    out = _request(sm, pid, VISITOR)
    assert out.status == "queued", out
    req = _closed(sm, out.request_id, 90)
    assert req.status == "reached", world.run_log()
    with sm() as s:
        atts = s.scalars(select(CallbackAttempt).where(CallbackAttempt.request_id == req.id)).all()
        assert [a.result for a in atts] == ["reached"]
        att = atts[0]
        assert att.queue == "q_answer"
        assert att.operator_answered_at and att.visitor_answered_at
        assert att.operator_answered_at <= att.visitor_answered_at <= att.ended_at
        calls = s.scalars(select(Call).where(Call.attribution == "callback", Call.project_id == pid)).all()
        assert [c.id for c in calls] == [req.call_id] == [att.call_id]
        call = calls[0]
        assert s.get(Source, call.source_id).name == "Website ads"
        assert (call.status, call.caller_number, call.queue, call.operator_name) == (
            "answered", VISITOR, "q_answer", "Anna")
        assert s.scalars(select(OutboundCall).where(OutboundCall.linkedid == call.linkedid)).first() is None
        linkedid = call.linkedid
    # the record as `calls list` shows it, against queue_log, the CDR of the ;2 half that waited in
    # the queue, and the AMI stream; Anna answers after 1 s, the visitor rings 2 s and talks 4 s
    placed = Placed(tag="callback", did="", caller=VISITOR, linkedid=linkedid)
    rec = world.records([placed])[linkedid]
    bad = check(world, placed, rec, status="answered", operator="Anna", queue="q_answer",
                source="Website ads", attribution="callback", context="calltracking-callback-request",
                wait=1, talk=6, legs=[("Anna", 6)])
    assert not bad, "\n".join(bad)
    # the witness: Asterisk's own AMI stream rang the queue and dialled the visitor in this call
    dials = [e for e in world.events(linkedid, "DialBegin") if e.get("DialString", "").startswith(VISITOR)]
    assert dials, "the visitor was never dialled in the call's Linkedid"
    ended = [e for e in world.events(linkedid, "DialEnd") if e.get("DialStatus") == "ANSWER"
             and e.get("DestChannel", "").startswith(f"Local/{VISITOR}@visitors")]
    assert ended


def test_visitor_never_answers_retried_then_unreached(world, cb):
    from calltracking.callbacks import worklist
    from calltracking.models import CallbackAttempt

    sm, pid = cb
    out = _request(sm, pid, SILENT)
    assert out.status == "queued"
    req = _closed(sm, out.request_id, 150)
    assert req.status == "unreached", world.run_log()
    with sm() as s:
        atts = s.scalars(select(CallbackAttempt).where(CallbackAttempt.request_id == req.id)
                         .order_by(CallbackAttempt.number)).all()
        assert [a.result for a in atts] == ["no_answer", "no_answer"]
        assert all(a.operator_answered_at and a.visitor_answered_at is None for a in atts)
        assert (atts[1].started_at - atts[0].ended_at).total_seconds() >= 29
        assert req.call_id is None
        unreached = [r.id for r in worklist.unreached(s, project_id=pid)]
        assert req.id in unreached


def test_outside_hours_scheduled_not_dialled(world, cb):
    import time

    from calltracking.callbacks import schedule, settings
    from calltracking.models import CallbackAttempt, CallbackRequest

    sm, pid = cb
    now = dt.datetime.now(UTC)
    local = now.astimezone(dt.timezone(dt.timedelta(hours=3)))     # Moscow, no DST
    # open only on the day after tomorrow (Moscow): closed now whatever the time
    day = schedule.DAYS[(local.weekday() + 2) % 7]
    with sm() as s, s.begin():
        settings.save(s, pid, {"enabled": True, "outbound_context": "visitors", "schedule": f"{day} 10:00-11:00"})
    out = _request(sm, pid, "+79160000902")
    expect = dt.datetime.combine(local.date() + dt.timedelta(days=2), dt.time(10, 0),
                                 tzinfo=dt.timezone(dt.timedelta(hours=3))).astimezone(UTC)
    assert (out.status, out.at) == ("scheduled", expect)
    time.sleep(12)                      # two runs of the 5 s callbacks job
    with sm() as s:
        assert s.scalars(select(CallbackAttempt).where(CallbackAttempt.request_id == out.request_id)).all() == []
        assert s.get(CallbackRequest, out.request_id).next_attempt_at == expect
    with sm() as s, s.begin():
        settings.save(s, pid, {"enabled": False, "outbound_context": "visitors"})

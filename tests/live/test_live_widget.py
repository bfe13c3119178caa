"""Live: a callback request made through the website widget's endpoint, end to end on a real
Asterisk 22 (docs/callbacks.md#widget).

The visit asks ``calltracking run``'s DNI server for a number with UTM tags (as dni.js does);
the assign answer offers the widget; ``POST /api/dni/callback`` with the visitor id and a number
typed in a national form is accepted; the ``callbacks`` job rings the queue of the routing rule
of the visit's source (``q_answer``: Anna), then the visitor (``[visitors]`` of
tests/live/pbx/extensions.conf). The result is ONE call record with ``attribution = callback``
and the visit's source, checked against queue_log, the CDR and the AMI stream. A second request
for the same number is answered alike and never makes the PBX call again.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from support.live_verdict import check
from support.live_world import Placed
from support.polling import poll
from support.web import post_json

pytestmark = pytest.mark.live

TYPED = "8 (916) 000-09-07"
VISITOR = "+79160000907"


@pytest.fixture(scope="module")
def widget_project(world):
    from calltracking import entities as svc
    from calltracking.callbacks import settings
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import RoutingRule

    eng = make_engine(world.db_url)
    sm = make_sessionmaker(eng)
    with sm() as s, s.begin():
        p = svc.add_project(s, "widget", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Mail campaign", "email", "mailing")
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="mailing to Anna", priority=1, source_id=src.id, queue="q_answer"))
        settings.save(s, p.id, {"enabled": True, "outbound_context": "visitors", "retries": 0,
                                "allowed_regions": "RU", "widget_delay_seconds": 30})
        pid = p.id
    world.db_put(**{"ring/101": 1, "talk/101": 12, "visitor/talk": 4})
    yield sm, pid
    eng.dispose()


def _api(world, path, body):
    return post_json(f"http://127.0.0.1:{world.dni_port}/api/dni/{path}", body)


def test_widget_request_gives_one_callback_call_with_the_visits_source(world, widget_project):
    from calltracking.models import Call, CallbackRequest, Source, VisitorSession

    sm, pid = widget_project
    st, visit, _ = _api(world, "assign", {"project": "widget", "utm_source": "mailing", "utm_medium": "email",
                                          "utm_campaign": "december"})
    assert st == 200 and visit["widget_config"] == {"enabled": True, "delay_seconds": 30, "open_now": True,
                                                    "next_open": None}
    vid = visit["visitor_id"]
    st, out, _ = _api(world, "callback", {"project": "widget", "visitor_id": vid, "phone": TYPED})
    assert (st, out) == (202, {"status": "queued", "at": None}), out

    def closed():
        with sm() as s:
            r = s.scalars(select(CallbackRequest).where(CallbackRequest.project_id == pid)).one()
            return r if r.status in ("reached", "unreached") else None
    req = poll(closed, 90, "the widget's request to close", interval=0.5)
    assert req.status == "reached", world.run_log()
    # The same number again (another visit): the same answer, and the PBX does not call again.
    other = _api(world, "assign", {"project": "widget"})[1]["visitor_id"]
    assert _api(world, "callback", {"project": "widget", "visitor_id": other, "phone": VISITOR})[:2] == (
        202, {"status": "queued", "at": None})
    with sm() as s:
        vs = s.scalars(select(VisitorSession).where(VisitorSession.visitor_id == vid)).one()
        assert (req.phone, req.visitor_id, req.session_id, req.source_id) == (VISITOR, vid, vs.id, vs.source_id)
        calls = s.scalars(select(Call).where(Call.project_id == pid)).all()
        assert [c.id for c in calls] == [req.call_id]
        call = calls[0]
        assert call.attribution == "callback" and s.get(Source, call.source_id).name == "Mail campaign"
        assert (call.status, call.caller_number, call.queue, call.operator_name) == (
            "answered", VISITOR, "q_answer", "Anna")
        linkedid = call.linkedid
        assert [r.id for r in s.scalars(select(CallbackRequest).where(CallbackRequest.phone == VISITOR))] == [req.id]
    placed = Placed(tag="widget", did="", caller=VISITOR, linkedid=linkedid)
    rec = world.records([placed])[linkedid]
    bad = check(world, placed, rec, status="answered", operator="Anna", queue="q_answer",
                source="Mail campaign", attribution="callback", context="calltracking-callback-request",
                wait=1, talk=6)
    assert not bad, "\n".join(bad)
    dials = [e for e in world.events(linkedid, "DialBegin") if e.get("DialString", "").startswith(VISITOR)]
    assert len(dials) == 1, "the visitor was dialled once, in the call's Linkedid"

"""The live suite's recording of two website callbacks (tests/ami/fixtures/callback_request_live.ami,
Asterisk 22 running dialplan/extensions_calltracking.conf): the visitor reached (Anna answers after
1 s, the visitor rings 2 s and talks 4 s) and the visitor who never answers (rings 3 s, cause
19). Replayed through the interpreter and then the real call store: inbound-like records with the
visitor as the caller and Anna's queue leg only, attribution ``callback`` from the request, the
attempts given their times; never an outbound call."""
import datetime as dt

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.callstore.store import CallStore
from calltracking.interpret import outbound
from calltracking.models import Call, CallbackAttempt, CallbackRequest, OutboundCall
from support.fixtures import OWN
from support.replay import interpret

FIXTURE = OWN / "callback_request_live.ami"
REACHED, SILENT = "1796350215.0", "1796350230.6"
TOKENS = {REACHED: "27f48107eb4b4c62a6fb4820c935e548", SILENT: "57ba207cadf8493d8bb4836d9fd3856f"}


def test_interpreted_as_the_visitors_call_with_the_operators_leg_only():
    it = interpret(FIXTURE)
    recs = {lid: c.record() for lid, c in it.calls.items()}
    assert set(recs) == {REACHED, SILENT}
    for lid, rec in recs.items():
        assert outbound.detect(it.calls[lid], ["Local/101@operators"]) is None
        assert (rec["status"], rec["queue"], rec["operator_name"]) == ("answered", "q_answer", "Anna")
        assert [(leg["operator_name"], leg["kind"]) for leg in rec["legs"]] == [("Anna", "queue")]
        assert abs(rec["wait_seconds"] - 1.0) < 0.1
    assert recs[REACHED]["caller_number"] == "+79160000901"
    assert abs(recs[REACHED]["talk_seconds"] - 6.0) < 0.1            # 2 s ringing the visitor + 4 s talk
    assert recs[REACHED]["ct"]["CT_CALLBACK_VISITOR_AT"] and "CT_CALLBACK_VISITOR_AT" not in recs[SILENT]["ct"]
    assert recs[SILENT]["ct"]["CT_CALLBACK_DIALSTATUS"] == "NOANSWER"
    assert it.stats["cross_check_mismatch"] == 0


@pytest.mark.db
def test_stored_with_callback_attribution_and_attempt_times(session_factory):
    with session_factory() as s:
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, "Website ads", "ads")
        s.flush()
        for lid, token in TOKENS.items():
            req = CallbackRequest(project_id=p.id, phone="+79160000901", source_id=src.id, status="dialing",
                                  attempts=1, requested_at=dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.timezone.utc))
            s.add(req)
            s.flush()
            s.add(CallbackAttempt(request_id=req.id, number=1, token=token, queue="q_answer",
                                  started_at=req.requested_at))
        s.commit()
        pid, sid = p.id, src.id
    it = interpret(FIXTURE)
    store = CallStore(session_factory, "live", "RU")
    store.persist([], list(it.calls.values()), done=list(it.calls))
    with session_factory() as s:
        calls = {c.linkedid: c for c in s.scalars(select(Call))}
        assert set(calls) == {REACHED, SILENT}
        assert all((c.attribution, c.project_id, c.source_id) == ("callback", pid, sid) for c in calls.values())
        assert s.scalars(select(OutboundCall)).all() == []
        att = {a.token: a for a in s.scalars(select(CallbackAttempt))}
        reached, silent = att[TOKENS[REACHED]], att[TOKENS[SILENT]]
        assert reached.call_id == calls[REACHED].id and silent.call_id == calls[SILENT].id
        assert reached.operator_answered_at < reached.visitor_answered_at < reached.ended_at
        assert abs((reached.visitor_answered_at - reached.operator_answered_at).total_seconds() - 2.0) < 0.1
        assert silent.operator_answered_at and silent.visitor_answered_at is None and silent.ended_at

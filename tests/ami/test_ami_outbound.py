"""Outbound calls through the real AMI server and listener: callbacks close missed calls, never
count as inbound calls, and are stored once (replays, restarts, `ami rebuild`)."""
import datetime as dt

import pytest
from sqlalchemy import func, select
from test_ami_outbound_streams import click_to_call, operator_calls_operator, operator_dials

from calltracking.calls import missed
from calltracking import entities as svc
from calltracking.models import Call, OutboundCall, ReportDaily
from support.ami_server import event_count, load
from support.ami_streams import Gen
from support.fixtures import FIXTURES

MISSED_NUMBER = "+79161110002"          # the caller of abandoned_queue.ami
MISSED_STARTED = 1795391983.21124


@pytest.fixture
def operator(session_factory, tracked):
    with session_factory() as s, s.begin():
        op = svc.add_operator(s, "Olga", "PJSIP/101", queues="sales")
        s.flush()
        return op.id


def feed(asterisk, lst, frames, total):
    asterisk.add(frames)
    asterisk.emit()
    total += event_count(frames)
    lst.wait_idle(total)
    return total


def outbound_rows(session_factory):
    with session_factory() as s:
        return s.scalars(select(OutboundCall).order_by(OutboundCall.started_at)).all()


def worklist(session_factory, state="all"):
    with session_factory() as s:
        rows = missed.worklist(s, state=state)
        return {r.call.caller_number: r for r in rows}


def utc(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def test_answered_callback_closes_missed_call_attempts_and_other_numbers_do_not(
        operator, asterisk, listener, session_factory):
    lst = listener()
    total = feed(asterisk, lst, load(FIXTURES / "abandoned_queue.ami"), 0)
    assert worklist(session_factory, "open")[MISSED_NUMBER].is_open
    g = Gen(1795392600, 0)
    attempt = operator_dials(g, "89161110002", answer=False, ring=20.0)      # nobody picks up
    other = operator_dials(g, "89169999999")                                 # someone else, answered
    total = feed(asterisk, lst, g.frames, total)
    row = worklist(session_factory)[MISSED_NUMBER]
    assert row.is_open and row.callback_at is None
    rows = outbound_rows(session_factory)
    assert [(r.number, r.status) for r in rows] == [("+79161110002", "missed"), ("+79169999999", "answered")]
    assert rows[0].linkedid == attempt["linkedid"] and rows[1].linkedid == other["linkedid"]

    g2 = Gen(1795393000, 100)
    cb = operator_dials(g2, "89161110002", talk=42.0)
    feed(asterisk, lst, g2.frames, total)
    row = worklist(session_factory)[MISSED_NUMBER]
    assert not row.is_open and row.called_back
    assert row.callback_at == utc(cb["started_at"]).replace(microsecond=row.callback_at.microsecond)
    assert row.time_to_callback() == pytest.approx(cb["started_at"] - MISSED_STARTED, abs=0.01)
    assert row.outbound is not None and row.outbound.operator_name == "Olga"
    o = outbound_rows(session_factory)[-1]
    assert (o.number, o.status, o.operator_id, o.operator_name, o.interface, o.originated_by_us) == (
        "+79161110002", "answered", operator, "Olga", "PJSIP/101", False)
    assert o.answered_at.timestamp() == pytest.approx(cb["answered_at"], abs=2e-6)
    assert o.ended_at.timestamp() == pytest.approx(cb["ended_at"], abs=2e-6)
    assert float(o.talk_seconds) == pytest.approx(42.0, abs=0.0011)
    assert o.project_id is None           # the phone presented "101": project unknown, still matches
    assert worklist(session_factory, "open").get(MISSED_NUMBER) is None


def test_outbound_calls_are_never_inbound_calls(operator, asterisk, listener, session_factory, calls):
    lst = listener()
    total = feed(asterisk, lst, load(FIXTURES / "answered_queue.ami"), 0)
    before = calls()
    assert len(before) == 1
    g = Gen(1795392600, 0)
    operator_dials(g, "74950001001")          # dials one of our own tracked DIDs (a test call)
    operator_dials(g, "89161234567", answer=False)
    operator_calls_operator(g)                # 101 -> 102: internal, not stored anywhere
    feed(asterisk, lst, g.frames, total)
    assert calls() == before                  # journal / CLI listing unchanged
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 1
        from calltracking.reports.rollup import rebuild_rollups

        rebuild_rollups(s)
        s.commit()
        assert s.scalar(select(func.sum(ReportDaily.calls)).where(ReportDaily.dim == "all")) == 1
    assert sorted(r.number for r in outbound_rows(session_factory)) == ["+74950001001", "+79161234567"]


def test_click_to_call_detected_and_closes(operator, asterisk, listener, session_factory):
    lst = listener()
    total = feed(asterisk, lst, load(FIXTURES / "abandoned_queue.ami"), 0)
    with session_factory() as s:
        m = s.scalars(select(Call).where(Call.caller_number == MISSED_NUMBER)).one()
        mid, pid = m.id, m.project_id
    g = Gen(1795392600, 0)
    info = click_to_call(g, MISSED_NUMBER, mid)
    feed(asterisk, lst, g.frames, total)
    (o,) = outbound_rows(session_factory)
    assert (o.originated_by_us, o.callback_for_id, o.project_id, o.number, o.status) == (
        True, mid, pid, MISSED_NUMBER, "answered")
    assert o.answered_at.timestamp() == pytest.approx(info["answered_at"], abs=2e-6)
    assert float(o.talk_seconds) == pytest.approx(15.0, abs=0.0011)
    row = worklist(session_factory)[MISSED_NUMBER]
    assert row.called_back and row.outbound.originated_by_us
    assert row.time_to_callback() == pytest.approx(info["started_at"] - MISSED_STARTED, abs=0.01)


def test_context_rule_and_replay_twice_and_rebuild_give_one_row(
        tracked, asterisk, listener, session_factory, run_cli, monkeypatch):
    # no operator rows at all: [asterisk] outbound_contexts alone marks the call outbound
    g = Gen(1795392600, 0)
    operator_dials(g, "89161234567", ext="250", name="Desk 250", context="desks-out")
    frames = g.frames
    lst = listener(asterisk__outbound_contexts="desks-out")
    total = feed(asterisk, lst, frames, 0)
    total = feed(asterisk, lst, frames, total)               # the same events again
    rows = outbound_rows(session_factory)
    assert len(rows) == 1 and rows[0].operator_name == "Desk 250" and rows[0].operator_id is None
    first = (rows[0].id, rows[0].status, rows[0].answered_at, rows[0].talk_seconds)
    lst.stop()
    monkeypatch.setenv("CALLTRACKING_ASTERISK_OUTBOUND_CONTEXTS", "desks-out")
    r = run_cli("ami", "rebuild", "--since", "2026-11-01")
    assert r.exit_code == 0, r.output
    rows = outbound_rows(session_factory)
    assert len(rows) == 1 and (rows[0].id, rows[0].status, rows[0].answered_at, rows[0].talk_seconds) == first
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0


def test_listener_restarted_mid_call_gives_one_row(operator, asterisk, listener, session_factory):
    g = Gen(1795392600, 0)
    info = operator_dials(g, "89161234567", talk=30.0)
    asterisk.add(g.frames)
    lst = listener()
    asterisk.emit_until(lambda h: h.get("Event") == "BridgeEnter" and h.get("Channel", "").startswith("PJSIP/trunk"))
    lst.wait_idle(event_count(g.frames[:asterisk.cursor]))
    (o,) = outbound_rows(session_factory)
    assert o.status == "in_progress" and o.answered_at is not None
    lst.stop()
    rest = event_count(g.frames[asterisk.cursor:])
    lst2 = listener()
    asterisk.emit()
    lst2.wait_idle(rest)
    rows = outbound_rows(session_factory)
    assert len(rows) == 1
    o = rows[0]
    assert o.status == "answered" and o.ended_at.timestamp() == pytest.approx(info["ended_at"], abs=2e-6)
    assert float(o.talk_seconds) == pytest.approx(30.0, abs=0.0011)

"""Our own fixtures (same raw format as the recordings) through the real server and listener."""
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from calltracking.models import AmiEvent, AmiListenerState, Call, CallLeg
from support.ami_server import event_count, load
from support.fixtures import FIXTURES, OWN

EXPECTED = json.loads((OWN / "expected.json").read_text())


def epoch(iso):
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def replay(asterisk, listener, *names, extra=None):
    frames = []
    for name in names:
        path = OWN / f"{name}.ami" if (OWN / f"{name}.ami").exists() else FIXTURES / f"{name}.ami"
        frames += load(path)
    frames += extra or []
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    return lst


def check_times(rec, exp):
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        if k in exp:
            assert epoch(rec[k]) == pytest.approx(exp[k], abs=2e-6), k
    if rec["status"] == "answered":
        assert rec["wait_seconds"] == pytest.approx(exp["answered_at"] - exp["started_at"], abs=0.0011)
        assert rec["talk_seconds"] == pytest.approx(exp["talk_seconds"], abs=0.0011)
        assert rec["talk_seconds"] + rec["hold_seconds"] == pytest.approx(
            exp["ended_at"] - exp["answered_at"], abs=0.0011)


def test_no_operators_logged_in(tracked, asterisk, listener, calls):
    replay(asterisk, listener, "no_operators")
    got = {c["linkedid"]: c for c in calls()}
    assert len(got) == 2
    for exp in EXPECTED["no_operators"]:
        rec = got[exp["linkedid"]]
        assert (rec["status"], rec["missed_reason"], rec["queue"]) == ("missed", "no_operators", exp["queue"])
        assert rec["wait_seconds"] == pytest.approx(exp["wait_seconds"], abs=0.0011)
        assert rec["operator"] is None and rec["legs"] == []
        check_times(rec, exp)


@pytest.mark.parametrize("name", ["blind_transfer", "attended_transfer"])
def test_transfer_talk_continues_and_a_leg_per_operator(name, tracked, asterisk, listener, calls):
    replay(asterisk, listener, name)
    (rec,) = calls()
    (exp,) = EXPECTED[name]
    assert (rec["status"], rec["operator"], rec["queue"]) == ("answered", exp["operator"], exp["queue"])
    check_times(rec, exp)
    assert rec["hold_seconds"] > 1.9          # the transfer's ringing (and consultation) is hold time
    legs = [[l["operator"], l["kind"], l["outcome"], l["talk_seconds"]] for l in rec["legs"]]
    assert len(legs) == len(exp["legs"])
    for got, want in zip(legs, exp["legs"]):
        assert got[:3] == want[:3]
        assert got[3] == pytest.approx(want[3], abs=0.0011)


def test_call_that_never_passed_agi_is_attributed_by_the_listener(tracked, asterisk, listener, calls,
                                                                  session_factory):
    replay(asterisk, listener, "no_agi")
    (rec,) = calls()
    assert (rec["attribution"], rec["source"], rec["project"]) == ("static", "Recorded", "acme")
    assert rec["did"] == "+74950001001" and rec["caller"] == "+79161110001"
    assert rec["talk_seconds"] == pytest.approx(5.015, abs=0.0011)
    with session_factory() as s:
        assert s.scalars(select(Call.via_agi)).one() is False


def test_untracked_did_without_agi_is_not_recorded(tracked, asterisk, listener, calls):
    frames = [f.replace(b"74950001001", b"74959999901") for f in load(OWN / "no_agi.ami")]
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    assert calls() == []


def test_agi_row_first_keeps_its_attribution(tracked, asterisk, listener, calls, session_factory):
    from calltracking import entities as svc

    with session_factory() as s, s.begin():
        p = svc.get_project(s, "acme")
        google = svc.add_source(s, p, "Google Ads", channel="ads")
        s.add(Call(pbx_id="pbx1", linkedid="1795392008.14", project_id=p.id, source_id=google.id,
                   attribution="static", did="+74950001004", caller_number="+79161110004",
                   queue="sales", via_agi=True, first_call=False,
                   started_at=dt.datetime(2026, 11, 23, 0, 0, 8, 240000, tzinfo=dt.timezone.utc)))
    replay(asterisk, listener, "agi_down_default_queue")
    (rec,) = calls()
    assert (rec["source"], rec["attribution"], rec["first_call"]) == ("Google Ads", "static", False)
    assert epoch(rec["started_at"]) == pytest.approx(1795392008.231215, abs=1e-6)   # the channel, not AGI time
    assert (rec["status"], rec["operator"]) == ("answered", "Anna")
    assert rec["talk_seconds"] == pytest.approx(3.018, abs=0.0011)


def test_malformed_frames_and_unknown_events_are_skipped(tracked, asterisk, listener, calls, session_factory):
    junk = [b"this is not a header line\r\nnor this\r\n\r\n",
            b"Event: FancyNewThing\r\nPrivilege: call,all\r\nTimestamp: 1795391970.1\r\nFoo: bar\r\n\r\n",
            b"Event: Hangup\r\nTimestamp: not-a-number\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n\r\n",
            b"\xff\xfe\x00garbage\r\n\r\n",
            b"Event: VarSet\r\nChannel: Local/x;2\r\nVariable: CT_SOURCE\r\nValue: \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 <script>\r\n\r\n",
            b"Event: QueueCallerJoin\r\n\r\n",
            b"Event: BridgeEnter\r\nUniqueid: nowhere\r\n\r\n"]
    frames = junk[:3] + load(FIXTURES / "answered_queue.ami") + junk[3:]
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    (rec,) = calls()
    assert rec["talk_seconds"] == pytest.approx(5.015, abs=0.0011) and rec["operator"] == "Anna"
    p = lst.stats["processor"]
    assert p.it.unknown["FancyNewThing"] == 1
    lst.stop()
    with session_factory() as s:
        st = s.get(AmiListenerState, "pbx1")
        assert st.unknown_events == 1 and st.malformed_frames >= 2
        assert json.loads(st.classes).keys() >= {"call", "agent", "dialplan", "cdr"}


def test_replaying_twice_changes_nothing(tracked, asterisk, listener, calls, session_factory):
    frames = load(FIXTURES / "ring_no_answer_then_answered.ami")
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    first = calls()
    with session_factory() as s:
        n_events = s.scalar(select(func.count()).select_from(AmiEvent))
        n_legs = s.scalar(select(func.count()).select_from(CallLeg))
    asterisk.add(frames)                       # the same stream again, same session
    asterisk.emit()
    lst.wait_idle(2 * event_count(frames))
    lst.stop()
    lst2 = listener()                          # and again to a fresh listener process state
    asterisk.add(frames)
    asterisk.emit()
    lst2.wait_idle(event_count(frames))
    assert calls() == first
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AmiEvent)) == n_events
        assert s.scalar(select(func.count()).select_from(CallLeg)) == n_legs == 2


def test_rebuild_rederives_calls_from_stored_events(tracked, asterisk, listener, calls, session_factory,
                                                    run_cli):
    lst = replay(asterisk, listener, "blind_transfer", "two_concurrent")
    lst.stop()
    before = calls()
    with session_factory() as s, s.begin():
        for c in s.scalars(select(Call)):
            c.talk_seconds, c.status, c.operator_name = 0, "in_progress", "?"
        s.execute(CallLeg.__table__.delete())
    out = run_cli("ami", "rebuild", "--since", "2026-11-22").output
    assert "3 call(s)" in out
    assert calls() == before
    res = run_cli("ami", "rebuild", "--since", "yesterday-ish", ok=False)
    assert res.exit_code == 1 and "invalid date" in res.output


def test_without_timestampevents_the_receive_time_is_used(tracked, asterisk, listener, calls, session_factory):
    import re
    import time

    frames = [re.sub(rb"Timestamp: [^\r]*\r\n", b"", f) for f in load(FIXTURES / "answered_queue.ami")]
    asterisk.add(frames)
    lst = listener()
    t0 = time.time()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    t1 = time.time()
    (rec,) = calls()
    assert rec["status"] == "answered" and rec["operator"] == "Anna"
    assert t0 - 0.5 <= epoch(rec["started_at"]) <= epoch(rec["ended_at"]) <= t1 + 0.5
    lst.stop()
    with session_factory() as s:
        st = s.get(AmiListenerState, "pbx1")
        assert st.without_timestamp * 10 > st.events > 100     # what doctor warns about

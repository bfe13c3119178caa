"""Streams recorded from a live Asterisk 22.10.1 (tests/ami/fixtures/recorded/, its README says
how): operators' phones behind Local routes that Asterisk optimises away (either way round),
call forwarding, attended and blind transfers, click-to-dial. Each runs through the real AMI
server and listener; the records are checked against expected.json and Asterisk's own queue_log
and CDR (within 1 s); then ``ami rebuild`` must write exactly the same rows."""
import datetime as dt
import json

import pytest
from sqlalchemy import select

from calltracking.models import Call, OutboundCall
from support.ami_server import FakeAsterisk, event_count, headers, load, queue_members_from_conf
from support.fixtures import RECORDED as REC

EXPECTED = {k: v for k, v in json.loads((REC / "expected.json").read_text()).items() if not k.startswith("_")}
INBOUND = sorted(k for k, v in EXPECTED.items() if not v.get("outbound"))
OUTBOUND = sorted(k for k, v in EXPECTED.items() if v.get("outbound"))
DIDS = [v["did"] for v in EXPECTED.values() if v.get("did")]
PHONES = {"Anna Petrova": "Local/201@phones", "Boris Ivanov": "Local/202@phones"}


def epoch(iso):
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def queue_log(linkedid: str) -> dict:
    """queue_log figures of the call (its channels' uniqueids from the stream): {verb: fields}."""
    uids = {headers(f).get("Uniqueid") for f in load(REC / f"{scenario_of(linkedid)}.ami")
            if headers(f).get("Linkedid") == linkedid}
    out = {}
    for line in (REC / "queue_log").read_text().splitlines():
        f = line.split("|")
        if f[1] in uids:
            out[f[4]] = f[5:]
    return out


def scenario_of(linkedid: str) -> str:
    return next(k for k, v in EXPECTED.items() if v["linkedid"] == linkedid)


@pytest.fixture
def asterisk():
    """The replay server answers QueueStatus with the recording's queue members (the routes)."""
    srv = FakeAsterisk(members=queue_members_from_conf(REC / "queues.conf"), chunk=701).start()
    yield srv
    srv.stop()


@pytest.fixture
def world(session_factory):
    """The recordings' DIDs tracked; the operators' phones registered by hand."""
    from calltracking import entities as svc

    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, "Recorded", channel="ads")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
        for name, iface in PHONES.items():
            svc.add_operator(s, name, iface)


def replay(asterisk, listener, names):
    frames = [f for name in names for f in load(REC / f"{name}.ami")]
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    return lst


def outbound_rows(session_factory) -> dict:
    with session_factory() as s:
        return {o.linkedid: {c.name: getattr(o, c.name) for c in OutboundCall.__table__.c
                             if c.name not in ("id", "created_at", "updated_at")}
                for o in s.scalars(select(OutboundCall))}


def check_inbound(rec, exp):
    assert (rec["status"], rec["missed_reason"], rec["queue"]) == (exp["status"], exp["missed_reason"], exp["queue"])
    assert rec["did"].lstrip("+") == exp["did"] and rec["caller"].lstrip("+") == exp["caller"]
    assert rec["operator"] == exp["operator"]
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        assert epoch(rec[k]) == pytest.approx(exp.get(k), abs=2e-6) if k in exp else rec[k] is None, k
    assert rec["wait_seconds"] == pytest.approx(exp["answered_at"] - exp["started_at"], abs=0.0011)
    assert rec["talk_seconds"] == pytest.approx(exp["talk_seconds"], abs=0.0011)
    assert rec["talk_seconds"] + rec["hold_seconds"] == pytest.approx(exp["ended_at"] - exp["answered_at"], abs=0.0011)
    legs = [[l["operator"], l["kind"], l["outcome"], l["interface"], l["talk_seconds"]] for l in rec["legs"]]
    assert [l[:4] for l in legs] == [l[:4] for l in exp["legs"]]        # one leg per operator who talked
    for got, want in zip(legs, exp["legs"]):
        assert got[4] == pytest.approx(want[4], abs=0.0011)


def check_against_asterisk(rec, exp):
    """Asterisk's own figures agree within 1 s (queue_log read here, CDR figures in expected.json)."""
    a, legs = exp["asterisk"], rec["legs"]
    assert abs(epoch(rec["ended_at"]) - epoch(rec["started_at"]) - a["call_seconds"]) < 1.0
    qlog = queue_log(exp["linkedid"])
    if exp["queue"]:
        assert int(qlog["CONNECT"][0]) == a["queue_holdtime"]
        end = next(v for k, v in qlog.items() if k in ("COMPLETEAGENT", "COMPLETECALLER", "ATTENDEDTRANSFER",
                                                         "BLINDTRANSFER"))
        assert int(end[-2]) == a["queue_talktime"]                    # talktime is the last but one field
        assert abs(rec["queue_wait_seconds"] - a["queue_holdtime"]) < 1.0
        first = legs[0]
        assert abs(epoch(first["ended_at"]) - epoch(first["answered_at"]) - a["queue_talktime"]) < 1.0
    else:
        assert qlog == {}
    for i, billsec in a.get("leg_billsec", {}).items():
        assert abs(legs[int(i)]["talk_seconds"] - billsec) < 1.0, i
    for i, billsec in a.get("leg_span_billsec", {}).items():
        leg = legs[int(i)]
        assert abs(epoch(leg["ended_at"]) - epoch(leg["answered_at"]) - billsec) < 1.0, i


@pytest.mark.parametrize("name", INBOUND)
def test_inbound_call_named_by_the_phone_that_talked(name, world, asterisk, listener, calls):
    lst = replay(asterisk, listener, [name])
    (rec,) = calls()
    exp = EXPECTED[name]
    assert rec["linkedid"] == exp["linkedid"]
    check_inbound(rec, exp)
    check_against_asterisk(rec, exp)
    it = lst.stats["processor"].it
    assert it.stats["cross_check_mismatch"] == 0, it.mismatches     # queue_log talktime and CDRs agree


def test_unregistered_phones_fall_back_to_the_route(session_factory, asterisk, listener, calls):
    """Without the phones registered, the queue member (the route rung) names the leg."""
    from calltracking import entities as svc

    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        svc.add_number(s, p, EXPECTED["queue_forwarded"]["did"], source=svc.add_source(s, p, "Recorded"))
    replay(asterisk, listener, ["queue_forwarded"])
    (rec,) = calls()
    assert rec["operator"] == "Anna"                 # Local/101@operators, learnt from QueueStatus
    assert [(l["operator"], l["interface"]) for l in rec["legs"]] == [("Anna", "Local/202@phones")]


@pytest.mark.parametrize("name", OUTBOUND)
def test_click_to_dial_is_an_outbound_call_answered_by_the_callee(name, world, asterisk, listener, calls,
                                                                  session_factory):
    replay(asterisk, listener, [name])
    exp = EXPECTED[name]
    assert calls() == []                            # never an inbound call, answered or missed
    (row,) = outbound_rows(session_factory).values()
    assert (row["linkedid"], row["number"], row["status"], row["operator_name"], row["interface"],
            row["originated_by_us"]) == (exp["linkedid"], exp["number"], exp["status"], exp["operator"],
                                         exp["interface"], exp["originated_by_us"])
    assert row["started_at"].timestamp() == pytest.approx(exp["started_at"], abs=2e-6)
    assert row["ended_at"].timestamp() == pytest.approx(exp["ended_at"], abs=2e-6)
    if exp["answered_at"] is None:                  # the operator picking up is not the answer
        assert row["answered_at"] is None
    else:
        assert row["answered_at"].timestamp() == pytest.approx(exp["answered_at"], abs=2e-6)
    assert float(row["talk_seconds"]) == pytest.approx(exp["talk_seconds"], abs=0.0011)
    a = exp["asterisk"]
    assert abs(exp["ended_at"] - exp["started_at"] - a["call_seconds"]) < 1.0
    if "callee_billsec" in a:
        assert abs(float(row["talk_seconds"]) - a["callee_billsec"]) < 1.0


def test_rebuild_writes_what_the_listener_wrote(world, asterisk, listener, calls, session_factory, run_cli):
    lst = replay(asterisk, listener, INBOUND + OUTBOUND)
    lst.stop()
    live, live_out = calls(), outbound_rows(session_factory)
    assert len(live) == len(INBOUND) and len(live_out) == len(OUTBOUND)
    with session_factory() as s, s.begin():          # spoil what the listener wrote
        for c in s.scalars(select(Call)):
            c.talk_seconds, c.operator_name, c.status = 0, "?", "in_progress"
        for o in s.scalars(select(OutboundCall)):
            o.talk_seconds, o.operator_name = 0, "?"
    out = run_cli("ami", "rebuild", "--since", "2026-12-01").output
    assert f"rebuilt {len(INBOUND) + len(OUTBOUND)} call(s)" in out
    assert calls() == live
    rebuilt_out = outbound_rows(session_factory)
    for row in rebuilt_out.values():
        row.pop("updated_at", None)
    assert rebuilt_out == live_out

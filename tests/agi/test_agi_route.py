"""The `route` hook through a real FastAGI socket, with the headers Asterisk 22 sends."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import Call, PoolReservation, TrackingNumber, VisitorSession

from support.agi_server import ServerThread
from support.config import make_config
from support.fastagi_client import RECORDED, call, headers

UTC = dt.timezone.utc


def _call_row(session_factory, linkedid="1795391970.0"):
    with session_scope(session_factory) as s:
        return s.scalars(select(Call).where(Call.linkedid == linkedid)).one()


def test_recorded_session_static_number(agi, data, session_factory, clock):
    # exactly what Asterisk 22 sent in the recording
    res = call(agi.port, RECORDED["asterisk_sent_headers"])
    v = res.vars
    assert v["CT_QUEUE"] == "sales"
    assert v["CT_ATTRIBUTION"] == "static"
    assert v["CT_SOURCE"] == "Google Ads" and v["CT_CAMPAIGN"] == "brand"
    assert v["CT_PROJECT"] == "acme" and v["CT_CALL_ID"] == "pbx1-1795391970.0"
    assert v["CT_CALLER_TYPE"] == "first" and v["CT_RECORD"] == "yes"
    assert v["CT_STATUS"] == "ok" and v["CT_TARGET"] == ""
    assert v["CALLERID(name)"] == "[Google] Caller 0001"
    assert res.closed
    # one round trip: the plain CT_* values and the plain labelled name in one EXEC MSet
    assert len(res.commands) == 1 and res.commands[0].startswith('EXEC MSet "CT_CALL_ID=pbx1-')
    assert res.commands[0].endswith(',CALLERID(name)=[Google] Caller 0001"')
    row = _call_row(session_factory)
    assert (row.pbx_id, row.did, row.caller_number) == ("pbx1", "+74950001001", "+79161110001")
    assert row.attribution == "static" and row.source_id == data["google"] and row.via_agi
    assert row.campaign_id == data["brand"] and row.queue == "sales" and row.first_call is True
    assert row.started_at == clock.now and row.record is True and row.status == "in_progress"


def test_route_twice_and_after_ami_listener_keeps_one_row(agi, data, session_factory, clock):
    # the AMI listener created the row first, with its own start time
    t0 = clock.now - dt.timedelta(seconds=2)
    with session_scope(session_factory) as s:
        s.add(Call(pbx_id="pbx1", linkedid="1795391970.0", started_at=t0, caller_number="+79161110001"))
    call(agi.port, headers())
    call(agi.port, headers())
    with session_scope(session_factory) as s:
        rows = s.scalars(select(Call)).all()
    assert len(rows) == 1
    assert rows[0].started_at == t0 and rows[0].attribution == "static" and rows[0].via_agi
    assert rows[0].first_call is True


def test_first_then_repeat_caller(agi, data, clock):
    v1 = call(agi.port, headers(args=("74950001001", "100.1"))).vars
    clock.now += dt.timedelta(minutes=5)
    v2 = call(agi.port, headers(args=("74950001002", "100.2"))).vars
    v3 = call(agi.port, headers(args=("74950001002", "100.3"), agi_callerid="79161119999")).vars
    assert (v1["CT_CALLER_TYPE"], v2["CT_CALLER_TYPE"], v3["CT_CALLER_TYPE"]) == ("first", "repeat", "first")
    anon = call(agi.port, headers(args=("74950001002", "100.4"), agi_callerid="anonymous")).vars
    assert anon["CT_CALLER_TYPE"] == ""


def test_pool_number_gives_the_visitor_session(agi, data, session_factory, clock):
    with session_scope(session_factory) as s:
        tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002001")).one()
        old = VisitorSession(project_id=data["project"], visitor_id="v-old", source_id=data["billboard"],
                             first_seen=clock.now - dt.timedelta(minutes=30),
                             last_seen=clock.now - dt.timedelta(minutes=20))
        vs = VisitorSession(project_id=data["project"], visitor_id="v1", source_id=data["google"],
                            keyword="buy cheap widgets", first_seen=clock.now - dt.timedelta(minutes=3),
                            last_seen=clock.now - dt.timedelta(seconds=20))
        s.add_all([old, vs])
        s.flush()
        s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=old.id,
                              assigned_at=clock.now - dt.timedelta(minutes=30),
                              last_seen_at=clock.now - dt.timedelta(minutes=20),
                              released_at=clock.now - dt.timedelta(minutes=10)))
        s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=vs.id,
                              assigned_at=clock.now - dt.timedelta(minutes=3),
                              last_seen_at=clock.now - dt.timedelta(seconds=20)))
        vs_id = vs.id
    v = call(agi.port, headers(args=("74950002001", "200.1"))).vars
    assert v["CT_ATTRIBUTION"] == "dynamic" and v["CT_SOURCE"] == "Google Ads"
    assert v["CT_CONFIDENCE"] == "0.500"          # two sessions held it within the hold window
    row = _call_row(session_factory, "200.1")
    assert row.session_id == vs_id and row.candidate_count == 2
    assert float(row.time_to_call_seconds) == 180.0


def test_pool_number_nobody_holds(agi, data):
    v = call(agi.port, headers(args=("74950002002", "201.1"))).vars
    assert v["CT_ATTRIBUTION"] == "none" and v["CT_QUEUE"] == "sales"
    assert "CALLERID(name)" not in v


def test_unknown_number_rings_the_default_queue(agi, data, session_factory):
    v = call(agi.port, headers(args=("74959999999", "300.1"))).vars
    assert v["CT_ATTRIBUTION"] == "none" and v["CT_QUEUE"] == "sales" and v["CT_RECORD"] == "no"
    assert v["CT_SOURCE"] == "" and v["CT_STATUS"] == "ok"
    v = call(agi.port, headers(args=("not-a-number", "300.2"))).vars
    assert v["CT_ATTRIBUTION"] == "none" and v["CT_QUEUE"] == "sales"
    assert _call_row(session_factory, "300.2").did == "not-a-number"


def test_retired_number_keeps_ringing(agi, data, session_factory):
    with session_scope(session_factory) as s:
        svc.retire_number(s, "+74950001001")
    v = call(agi.port, headers(args=("74950001001", "400.1"))).vars
    assert v["CT_ATTRIBUTION"] == "none" and v["CT_QUEUE"] == "sales" and v["CT_PROJECT"] == "acme"
    assert "CALLERID(name)" not in v


def test_no_project_default_uses_general_default_queue(agi, session_factory):
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "bare", default_queue="")
        src = svc.add_source(s, p, "Radio")
        svc.add_number(s, p, "+74950003001", source=src)
    v = call(agi.port, headers(args=("74950003001", "500.1"))).vars
    assert v["CT_QUEUE"] == "general-q" and v["CT_ATTRIBUTION"] == "static"


def test_callerid_prefix_respects_number_and_escapes_hostile_names(agi, data):
    v = call(agi.port, headers(args=("74950001002", "600.1"))).vars
    assert "CALLERID(name)" not in v               # this number has callerid_prefix = no
    evil = 'Ivan" \\ "; EXEC System rm -rf'
    res = call(agi.port, headers(args=("74950001001", "600.2"), agi_calleridname=evil))
    assert res.vars["CALLERID(name)"] == "[Google] " + evil
    line = [c for c in res.commands if c.startswith("SET VARIABLE CALLERID(name)")][0]
    assert line == 'SET VARIABLE CALLERID(name) "[Google] Ivan\\" \\\\ \\"; EXEC System rm -rf"'


def test_callerid_prefix_disabled_in_config(db_url, data, session_factory, clock):
    srv = ServerThread(make_config(db_url, agi__callerid_prefix="no"), session_factory, clock=clock)
    try:
        v = call(srv.port, headers(args=("74950001001", "700.1"))).vars
    finally:
        srv.stop()
    assert v["CT_SOURCE"] == "Google Ads" and "CALLERID(name)" not in v


def test_query_string_in_script_name_and_caller_argument(agi, data, session_factory):
    lines = [("agi_network_script: route?x=1" if h.startswith("agi_network_script") else h)
             for h in headers(args=("74950001001", "800.1", "+7 (916) 222-33-44"))]
    v = call(agi.port, lines).vars
    assert v["CT_ATTRIBUTION"] == "static"
    assert _call_row(session_factory, "800.1").caller_number == "+79162223344"

"""The core hooks without a socket: the catalogue snapshot agrees with attribution.attribute()."""
from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select

from calltracking.attribution import lookup as attribution
from calltracking.hooks import core as hooks
from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import PoolReservation, RoutingRule, TrackingNumber, VisitorSession

from fake_asterisk import call, headers


def test_snapshot_attribution_matches_attribute(config, data, session_factory, clock):
    with session_scope(session_factory) as s:
        tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002001")).one()
        vs = VisitorSession(project_id=data["project"], visitor_id="v", source_id=data["google"],
                            first_seen=clock.now, last_seen=clock.now)
        s.add(vs)
        s.flush()
        s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=vs.id,
                              assigned_at=clock.now - dt.timedelta(minutes=1), last_seen_at=clock.now))
        svc.retire_number(s, "+74950001002")
        s.add(TrackingNumber(project_id=data["project"], number="+74950004001", kind="static"))  # unassigned
    env = hooks.HookEnv(config, session_factory, clock=clock)
    for did in ("74950001001", "74950001002", "74950002001", "74950002002", "74950004001",
                "74959999999", "garbage"):
        s = session_factory()
        try:
            ref = attribution.attribute(s, did, clock.now, "RU")
            cat = env.cache.catalogue(s.connection(), None)
            e164 = hooks.normalize(did, "RU")
            info = cat.number(e164, e164 or did)
            got = hooks.attribute_number(s.connection(), info, clock.now)
        finally:
            s.close()
        assert got["kind"] == ref.kind, did
        assert got["source_id"] == ref.source_id and got["campaign_id"] == ref.campaign_id, did
        assert got["confidence"] == ref.confidence and got["candidates"] == ref.candidate_count, did
        assert (info.project.id if info.project else None) == ref.project_id, did
        assert (got["session"].id if got["session"] else None) == ref.session_id, did
        assert info.tn_id == (ref.tracking_number.id if ref.tracking_number else None), did


def test_catalogue_changes_reach_the_server(db_url, data, session_factory, clock):
    from fake_asterisk import ServerThread, make_config

    srv = ServerThread(make_config(db_url), session_factory, clock=clock,
                       cache=hooks.HookCache(rules_ttl=0.2))
    try:
        assert call(srv.port, headers(args=("74950001001", "r.1"))).vars["CT_QUEUE"] == "sales"
        with session_scope(session_factory) as s:           # a number added a moment ago
            p = s.get(svc.Project, data["project"])
            svc.add_number(s, p, "+74950005001", source=svc.get_source(s, p, "Billboard"))
        assert call(srv.port, headers(args=("74950005001", "r.2"))).vars["CT_SOURCE"] == "Billboard"
        with session_scope(session_factory) as s:
            s.add(RoutingRule(project_id=data["project"], name="new", priority=1, queue="new-q"))
            svc.retire_number(s, "+74950001001")
        deadline = time.monotonic() + 5
        v = {}
        while time.monotonic() < deadline:
            v = call(srv.port, headers(args=("74950001001", f"r.{time.monotonic()}"))).vars
            if v["CT_QUEUE"] == "new-q":
                break
            time.sleep(0.05)
        assert v["CT_QUEUE"] == "new-q" and v["CT_ATTRIBUTION"] == "none"
    finally:
        srv.stop()


def test_dry_run_and_defaults(config, data, session_factory, clock):
    env = hooks.HookEnv(config, session_factory, clock=clock)
    out = hooks.route(env, "+74950001001", "x.1", "89161110001", write=False)
    assert out["CT_SOURCE"] == "Google Ads" and out["CT_CALLER_TYPE"] == "first"
    with session_scope(session_factory) as s:
        assert s.scalars(select(hooks.Call)).first() is None
    d = hooks.defaults(env, "route", "+74950001001", "x.1")
    assert d["CT_QUEUE"] == "sales"            # remembered from the answer above
    assert hooks.defaults(env, "route", "+74950009999", "x.2")["CT_QUEUE"] == "general-q"
    assert hooks.caller_number("8 (916) 111-00-01", "RU") == "+79161110001"
    assert hooks.caller_number("12#34", "RU") == "1234"
    assert hooks.caller_number("anonymous", "RU") == ""
    assert hooks.clean_linkedid("1.2;DROP TABLE") == "1.2DROPTABLE"

"""The hooks without a socket. The FastAGI path copies rules of the ORM path for speed (the
catalogue snapshot and plain SQL); each copy is proved to agree with its original here:
attribution, the routing rules' evaluation, the first-call window, the fallback queue."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking import hooks
from calltracking.attribution import fast, lookup, routing
from calltracking.db import session_scope
from calltracking.hooks import inputs
from calltracking.models import (
    Call, PoolReservation, Project, RoutingRule, TrackingNumber, VisitorSession,
)
from support.agi_server import ServerThread
from support.config import make_config
from support.fastagi_client import call, headers


def _hold(s, data, number: str, visitor: str, at, released=None, **session):
    """A visitor session holding ``number`` from ``at`` (until ``released``)."""
    tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == number,
                                                TrackingNumber.active.is_(True))).one()
    vs = VisitorSession(project_id=data["project"], visitor_id=visitor, first_seen=at, last_seen=at, **session)
    s.add(vs)
    s.flush()
    s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=vs.id, assigned_at=at,
                          last_seen_at=released or at, released_at=released))
    s.flush()
    return vs


def test_fast_attribution_agrees_with_attribute(config, data, session_factory, clock):
    now = clock.now
    minutes = lambda m: now - dt.timedelta(minutes=m)      # noqa: E731
    with session_scope(session_factory) as s:
        p = s.get(Project, data["project"])
        svc.add_number(s, p, "+74950002003", pool=svc.get_pool(s, p, "website"))
        # 2001: two visitors in the hold window (one of them in two sessions): confidence 0.5
        _hold(s, data, "+74950002001", "v1", minutes(60), released=minutes(50), source_id=data["google"])
        _hold(s, data, "+74950002001", "v2", minutes(40), released=minutes(5))
        _hold(s, data, "+74950002001", "v1", minutes(4), source_id=data["billboard"], keyword="sofa")
        # 2002: held by a visitor without a source: the pool's source
        _hold(s, data, "+74950002002", "v3", minutes(1))
        # 2003: released before the hold window (15 min): nobody, the pool's source
        _hold(s, data, "+74950002003", "v4", minutes(60), released=minutes(16), source_id=data["google"])
        svc.retire_number(s, "+74950001002")
        s.add(TrackingNumber(project_id=data["project"], number="+74950004001", kind="static"))  # unassigned
    env = hooks.HookEnv(config, session_factory, clock=clock)
    kinds = set()
    for did in ("74950001001", "74950001002", "74950002001", "74950002002", "74950002003", "74950004001",
                "74959999999", "garbage"):
        s = session_factory()
        try:
            ref = lookup.attribute(s, did, now, "RU")
            cat = env.cache.catalogue(s.connection(), None)
            e164, did_text = inputs.dialled(did, "RU")
            info = cat.number(e164, did_text)
            got = fast.attribute_number(s.connection(), info, now)
        finally:
            s.close()
        kinds.add((ref.kind, ref.confidence))
        assert (got.kind, got.source_id, got.campaign_id) == (ref.kind, ref.source_id, ref.campaign_id), did
        assert (got.confidence, got.candidates) == (ref.confidence, ref.candidate_count), did
        assert (info.project.id if info.project else None) == ref.project_id, did
        assert (got.session.id if got.session else None) == ref.session_id, did
        assert info.tn_id == (ref.tracking_number.id if ref.tracking_number else None), did
        if ref.visitor_session is not None:     # time to call: the route hook's row, the ORM's rule
            _, row = hooks.plan_route(env, did, "ttc.1")
            assert row["time_to_call_seconds"] == ref.time_to_call(now) > 0, did
    assert {k for k, _ in kinds} == {"static", "dynamic", "none"}
    assert ("dynamic", lookup.confidence(2)) in kinds


def test_route_rules_agree_with_the_orm_path(config, data, session_factory, clock):
    """The hook's rules come from the catalogue and its facts from the pool holder's row; the
    ORM path reads RoutingRule rows and the VisitorSession: the same rule wins every time."""
    t = dt.time
    with session_scope(session_factory) as s:
        p = s.get(Project, data["project"])
        _hold(s, data, "+74950002001", "v1", clock.now - dt.timedelta(hours=1), source_id=data["google"],
              keyword="blue sofa")
        _hold(s, data, "+74950002002", "v2", clock.now - dt.timedelta(hours=1), utm_term="brand-x")
        s.add(TrackingNumber(project_id=p.id, number="+74950004001", kind="static"))      # unassigned
        s.add_all([
            RoutingRule(project_id=p.id, name="off", priority=1, queue="never", enabled=False),
            RoutingRule(project_id=p.id, name="google-day", priority=10, source_id=data["google"],
                        time_from=t(9), time_to=t(18), weekdays="12345", queue="google-day"),
            RoutingRule(project_id=p.id, name="sofa", priority=20, keyword_regex="sofa", queue="sofa-q",
                        record=True),
            RoutingRule(project_id=p.id, name="brand-utm", priority=30, utm_regex="^brand", target="PJSIP/200"),
            RoutingRule(project_id=p.id, name="weekend", priority=40, campaign_id=data["brand"],
                        weekdays="67", queue="weekend", record=False),
            RoutingRule(project_id=p.id, name="night", priority=50, time_from=t(22), time_to=t(6),
                        weekdays="3", queue="night"),
        ])
    env = hooks.HookEnv(config, session_factory, clock=clock)       # the catalogue snapshot
    general = config.general.default_queue
    chosen = set()
    # Moscow (UTC+3): Wednesday 12:30, Wednesday 23:00, Thursday 04:00 (Wednesday's night), Saturday 13:00
    for when in (dt.datetime(2026, 3, 4, 9, 30), dt.datetime(2026, 3, 4, 20, 0),
                 dt.datetime(2026, 3, 5, 1, 0), dt.datetime(2026, 3, 7, 10, 0)):
        clock.now = when.replace(tzinfo=dt.timezone.utc)
        for did in ("74950001001", "74950001002", "74950002001", "74950002002", "74950004001", "74959999999"):
            answer, row = hooks.plan_route(env, did, "r.1")
            with session_scope(session_factory) as s:
                att = lookup.attribute(s, did, clock.now, "RU")
                project = att.project
                rules = [routing.Rule.from_row(r) for r in
                         s.scalars(select(RoutingRule).where(RoutingRule.project_id == project.id))]
                rule = routing.choose(rules, routing.CallFacts.of(
                    routing.local_now(clock.now, project.timezone), att.source_id, att.campaign_id,
                    att.visitor_session))
                tn = att.tracking_number
                record = rule.record if rule and rule.record is not None else bool(
                    tn is not None and tn.active and tn.record and att.kind != "none")
            chosen.add(rule.name if rule else None)
            where = f"{did} at {when}"
            assert row["routing_rule_id"] == (rule.id if rule else None), where
            assert answer["CT_QUEUE"] == routing.queue_for(rule, routing.default_queue(project.default_queue,
                                                                                       general)), where
            assert answer["CT_TARGET"] == (rule.target if rule else ""), where
            assert answer["CT_RECORD"] == ("yes" if record else "no"), where
    assert chosen == {"google-day", "sofa", "brand-utm", "weekend", "night", None}


def test_first_call_agrees_with_is_first_call(data, session_factory, clock):
    """Repeat or first caller: the hook's one query (skipping this call's own row by its
    linkedid) and the ORM's (skipping it by id), over windows, projects and callers."""
    now = clock.now
    with session_scope(session_factory) as s:
        other = svc.add_project(s, "beta", "Beta")
        for linkedid, caller, project, days_ago in (
                ("a.1", "+79161110001", data["project"], 2), ("a.2", "+79161110001", data["project"], 10),
                ("a.3", "+79161110001", other.id, 0.5), ("a.4", "+79161110001", data["project"], -1),
                ("b.1", "+79162220002", data["project"], 1 / 1440), ("c.1", "101", data["project"], 3)):
            s.add(Call(pbx_id="pbx1", linkedid=linkedid, project_id=project, caller_number=caller,
                       started_at=now - dt.timedelta(days=days_ago)))
        other_id = other.id
    answers = set()
    with session_scope(session_factory) as s:
        conn = s.connection()
        for caller in ("+79161110001", "+79162220002", "101", "+79163330003", "", "abc"):
            for project in (data["project"], other_id, None):
                for window in (0, 1, 3, 7, 30):
                    for linkedid in ("b.1", "new.1"):
                        own = s.scalars(select(Call.id).where(Call.linkedid == linkedid)).first()
                        ref = lookup.is_first_call(s, project, caller, now, window, exclude_call_id=own)
                        got = fast.first_call(conn, "pbx1", project, caller, now, window, linkedid)
                        assert got == ref, (caller, project, window, linkedid)
                        answers.add(ref)
    assert answers == {True, False, None}


def test_fallback_queue_agrees_with_route(config, data, session_factory, clock):
    """The queue the defaults give while the database is down (remembered at the server's start,
    and from each route) is the queue route gives when no rule sends the call elsewhere, and the
    ORM path's default queue."""
    with session_scope(session_factory) as s:
        beta = svc.add_project(s, "beta", "Beta")                   # no default queue: [general]'s
        svc.add_number(s, beta, "+74950003001", source=svc.add_source(s, beta, "Radio", channel="offline"))
        svc.retire_number(s, "+74950001002")
    general = config.general.default_queue
    env = hooks.HookEnv(config, session_factory, clock=clock)
    hooks.preload_fallback_queues(env)
    queues = set()
    for did in ("74950001001", "8 (495) 000-20-01", "+74950002002", "74950003001"):     # active numbers
        assert hooks.defaults(env, "route", did)["CT_QUEUE"] == hooks.route(env, did, "", write=False)["CT_QUEUE"]
    for did in ("74950001001", "74950001002", "74950002001", "74950003001", "74959999999", "garbage"):
        routed = hooks.route(env, did, "", write=False)["CT_QUEUE"]
        assert hooks.defaults(env, "route", did)["CT_QUEUE"] == routed, did
        with session_scope(session_factory) as s:
            project = lookup.attribute(s, did, clock.now, "RU").project
            assert routed == routing.default_queue(project.default_queue if project else "", general), did
        queues.add(routed)
    assert queues == {"sales", general}


def test_catalogue_changes_reach_the_server(db_url, data, session_factory, clock):
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
        assert s.scalars(select(Call)).first() is None
    d = hooks.defaults(env, "route", "+74950001001", "x.1")
    assert d["CT_QUEUE"] == "sales"            # remembered from the answer above
    assert hooks.defaults(env, "route", "+74950009999", "x.2")["CT_QUEUE"] == "general-q"
    assert inputs.caller_number("8 (916) 111-00-01", "RU") == "+79161110001"
    assert inputs.caller_number("12#34", "RU") == "1234"
    assert inputs.caller_number("anonymous", "RU") == ""
    assert inputs.clean_linkedid("1.2;DROP TABLE") == "1.2DROPTABLE"


def test_every_answer_sets_its_listed_variables(config, data, session_factory, clock):
    """What each hook answers, ok or not, sets exactly the variables answer.py lists for it."""
    from calltracking.hooks.answer import CALL_VARIABLES, PROMO_REJECTED, PROMO_VARIABLES, TAG_VARIABLES

    env = hooks.HookEnv(config, session_factory, clock=clock)
    assert tuple(hooks.route(env, "74950001002", "v.1")) == CALL_VARIABLES
    assert tuple(hooks.route(env, "74950001001", "v.2")) == CALL_VARIABLES + ("CALLERID(name)",)
    assert tuple(hooks.lookup(env, "v.1")) == CALL_VARIABLES
    assert tuple(hooks.lookup(env, "v.9", "74950001001")) == CALL_VARIABLES
    assert tuple(hooks.promo(env, "v.1", "4242")) == PROMO_VARIABLES
    assert tuple(hooks.promo(env, "v.1", "0000")) == PROMO_REJECTED
    assert tuple(hooks.tag(env, "v.1", "vip")) == TAG_VARIABLES
    for hook, names in (("route", CALL_VARIABLES), ("lookup", CALL_VARIABLES), ("promo", PROMO_REJECTED),
                        ("tag", TAG_VARIABLES)):
        assert tuple(hooks.defaults(env, hook)) == names, hook


# ---------------------------------------------------------------- rules both paths call
@pytest.mark.parametrize("rule_record, number_records, attributed, recorded", [
    (True, False, False, True),      # the rule records, whatever the number says
    (False, True, True, False),      # the rule does not record, whatever the number says
    (None, True, True, True),        # no choice in the rule: the number records an attributed call
    (None, True, False, False),      # ... not an unattributed one
    (None, False, True, False),      # ... and a number that does not record records nothing
])
def test_which_calls_are_recorded(rule_record, number_records, attributed, recorded):
    rule = routing.Rule(id=1, priority=1, queue="q", record=rule_record)
    assert routing.records(rule, number_records, attributed) is recorded
    if rule_record is None:
        assert routing.records(None, number_records, attributed) is recorded   # the listener's case


@pytest.mark.parametrize("project_days, general_days, window", [(None, 90, 90), (0, 90, 90), (30, 90, 30), (None, 0, 0)])
def test_the_first_call_window(project_days, general_days, window):
    assert lookup.first_call_window(project_days, general_days) == window

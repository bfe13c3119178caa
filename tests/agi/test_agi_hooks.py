"""Routing rules, promo, tag and lookup through the FastAGI socket."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from calltracking.attribution import routing
from calltracking.db import session_scope
from calltracking.models import Call, PromoCode, RoutingRule, Tag, VisitorSession

from support.agi_server import ServerThread
from support.db_locks import WriteLock
from support.config import make_config
from support.fastagi_client import call, headers

MSK = dt.timezone(dt.timedelta(hours=3))


def _rules(session_factory, project_id, *rules):
    with session_scope(session_factory) as s:
        for r in rules:
            s.add(RoutingRule(project_id=project_id, **r))


def test_rule_priority_first_match_wins(agi, data, session_factory):
    _rules(session_factory, data["project"],
           dict(name="any google", priority=20, source_id=data["google"], queue="google-q"),
           dict(name="brand", priority=10, campaign_id=data["brand"], queue="brand-q", record=False),
           dict(name="billboard", priority=5, source_id=data["billboard"], target="PJSIP/101"),
           dict(name="disabled", priority=1, queue="never", enabled=False))
    v = call(agi.port, headers(args=("74950001001", "1.1"))).vars
    assert v["CT_QUEUE"] == "brand-q" and v["CT_RECORD"] == "no"
    v = call(agi.port, headers(args=("74950001002", "1.2"))).vars
    assert v["CT_TARGET"] == "PJSIP/101" and v["CT_QUEUE"] == "sales"   # queue stays as the fallback
    with session_scope(session_factory) as s:
        rule_id = s.scalars(select(RoutingRule.id).where(RoutingRule.name == "billboard")).one()
        assert s.scalars(select(Call.routing_rule_id).where(Call.linkedid == "1.2")).one() == rule_id


def test_time_of_day_in_project_time_zone(agi, data, session_factory, clock):
    # office hours 09:00-18:00 Moscow time on weekdays, a night queue 22:00-06:00 every day
    _rules(session_factory, data["project"],
           dict(name="office", priority=10, time_from=dt.time(9), time_to=dt.time(18), weekdays="12345",
                queue="office-q"),
           dict(name="night", priority=20, time_from=dt.time(22), time_to=dt.time(6), queue="night-q"))
    expect = [
        (dt.datetime(2026, 3, 4, 9, 30, tzinfo=MSK), "office-q"),    # Wed 09:30 MSK = 06:30 UTC
        (dt.datetime(2026, 3, 4, 8, 59, tzinfo=MSK), "sales"),       # before opening
        (dt.datetime(2026, 3, 4, 17, 59, tzinfo=MSK), "office-q"),
        (dt.datetime(2026, 3, 4, 18, 0, tzinfo=MSK), "sales"),       # end is exclusive
        (dt.datetime(2026, 3, 7, 12, 0, tzinfo=MSK), "sales"),       # Saturday
        (dt.datetime(2026, 3, 4, 23, 0, tzinfo=MSK), "night-q"),     # 20:00 UTC
        (dt.datetime(2026, 3, 5, 2, 0, tzinfo=MSK), "night-q"),      # wraps midnight
        (dt.datetime(2026, 3, 5, 6, 0, tzinfo=MSK), "sales"),
    ]
    got = []
    for i, (when, _) in enumerate(expect):
        clock.now = when.astimezone(dt.timezone.utc)
        got.append(call(agi.port, headers(args=("74950001002", f"2.{i}"))).vars["CT_QUEUE"])
    assert got == [q for _, q in expect]


def test_window_pure_functions():
    friday_night = dict(time_from=dt.time(22), time_to=dt.time(6), weekdays="5")
    sat_2am = dt.datetime(2026, 3, 7, 2, 0, tzinfo=MSK)        # Saturday, still "Friday night"
    sat_23 = dt.datetime(2026, 3, 7, 23, 0, tzinfo=MSK)
    assert routing.in_window(sat_2am, **friday_night)
    assert not routing.in_window(sat_23, **friday_night)
    assert routing.in_window(sat_23, None, None, "6") and not routing.in_window(sat_23, None, None, "5")
    assert routing.in_window(sat_23, dt.time(8), dt.time(8), "67")
    assert routing.local_now(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "Asia/Tokyo").hour == 9
    facts = routing.CallFacts(local_time=sat_23, keyword="", utm_term="Buy Widgets", has_session=True)
    assert routing.rule_matches(routing.Rule(id=1, keyword_regex="widget", queue="q"), facts)
    assert not routing.rule_matches(routing.Rule(id=2, keyword_regex="([", queue="q"), facts)
    assert not routing.rule_matches(routing.Rule(id=3, utm_regex="x", queue="q"),
                                    routing.CallFacts(local_time=sat_23))


def test_keyword_rule_on_pool_session(agi, data, session_factory, clock):
    from calltracking.models import PoolReservation, TrackingNumber

    _rules(session_factory, data["project"],
           dict(name="wholesale", priority=1, keyword_regex="wholesale|bulk", queue="b2b"),
           dict(name="utm", priority=2, utm_regex="^retail", queue="retail"))
    with session_scope(session_factory) as s:
        tns = s.scalars(select(TrackingNumber).where(TrackingNumber.kind == "pool")
                        .order_by(TrackingNumber.number)).all()
        for tn, (kw, term) in zip(tns, [("Bulk paper", ""), ("", "retail paper")]):
            vs = VisitorSession(project_id=data["project"], visitor_id=kw or term, keyword=kw, utm_term=term,
                                first_seen=clock.now, last_seen=clock.now)
            s.add(vs)
            s.flush()
            s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=vs.id,
                                  assigned_at=clock.now - dt.timedelta(minutes=1), last_seen_at=clock.now))
    assert call(agi.port, headers(args=("74950002001", "3.1"))).vars["CT_QUEUE"] == "b2b"
    v = call(agi.port, headers(args=("74950002002", "3.2"))).vars
    assert v["CT_QUEUE"] == "retail" and v["CT_SOURCE"] == "Website" and v["CT_ATTRIBUTION"] == "dynamic"


def test_promo_code_given_by_the_dialplan(agi, data, session_factory):
    call(agi.port, headers(args=("74950001001", "4.1")))
    v = call(agi.port, headers("promo", args=("4.1", "4242"))).vars
    assert v["CT_PROMO"] == "valid" and v["CT_ATTRIBUTION"] == "promo" and v["CT_SOURCE"] == "Billboard"
    assert v["CT_QUEUE"] == "sales" and v["CT_PROMO_ATTEMPTS"] == "1"
    with session_scope(session_factory) as s:
        row = s.scalars(select(Call).where(Call.linkedid == "4.1")).one()
        assert row.attribution == "promo" and row.source_id == data["billboard"] and row.promo_code_id
        assert row.did == "+74950001001"       # the route's facts stay
    v = call(agi.port, headers("promo", args=("4.1", "9999"))).vars
    assert v == {"CT_PROMO": "invalid", "CT_STATUS": "ok", "CT_PROMO_ATTEMPTS": "1"}


def test_promo_read_by_the_hook_with_retries(agi, data, session_factory):
    call(agi.port, headers(args=("74950001001", "5.1")))
    res = call(agi.port, headers("promo", args=("5.1",)), digits=["11", "4242"])
    assert res.vars["CT_PROMO"] == "valid" and res.vars["CT_PROMO_ATTEMPTS"] == "2"
    assert [c.split(" ")[0:2] for c in res.commands[:3]] == [["GET", "DATA"], ["STREAM", "FILE"],
                                                             ["GET", "DATA"]]
    # promo_retries = 2 by default: three attempts, then invalid
    res = call(agi.port, headers("promo", args=("5.1", "", "please-enter&code; HANGUP", "6")),
               digits=["1", "2", "3", "4242"])
    assert res.vars["CT_PROMO"] == "invalid" and res.vars["CT_PROMO_ATTEMPTS"] == "3"
    assert sum(c == "GET DATA please-enter&codeHANGUP 6000 6" for c in res.commands) == 3


def test_promo_expired_or_inactive_is_invalid(agi, data, session_factory, clock):
    with session_scope(session_factory) as s:
        s.add(PromoCode(project_id=data["project"], code="1111", source_id=data["google"],
                        valid_to=clock.now - dt.timedelta(days=1)))
        s.add(PromoCode(project_id=data["project"], code="2222", source_id=data["google"], active=False))
    call(agi.port, headers(args=("74950001001", "6.1")))
    for code in ("1111", "2222"):
        assert call(agi.port, headers("promo", args=("6.1", code))).vars["CT_PROMO"] == "invalid"


def test_tag_and_lookup(agi, data, session_factory):
    call(agi.port, headers(args=("74950001001", "7.1")))
    v = call(agi.port, headers("tag", args=("7.1", "wants a callback"))).vars
    assert v == {"CT_TAG": "wants a callback", "CT_STATUS": "ok"}
    call(agi.port, headers("tag", args=("7.1", "wants a callback")))      # idempotent
    call(agi.port, headers("tag", args=("7.1", "vip")))
    with session_scope(session_factory) as s:
        row = s.scalars(select(Call).where(Call.linkedid == "7.1")).one()
        assert sorted(t.name for t in row.tags) == ["vip", "wants a callback"]
        assert s.query(Tag).count() == 2
    v = call(agi.port, headers("lookup", args=("7.1",))).vars
    assert v["CT_ATTRIBUTION"] == "static" and v["CT_SOURCE"] == "Google Ads" and v["CT_QUEUE"] == "sales"
    assert v["CT_CALLER_TYPE"] == "first" and v["CT_CALL_ID"] == "pbx1-7.1"
    # lookup of a DID without a call: read-only, writes nothing
    v = call(agi.port, headers("lookup", args=("7.2", "74950001002"))).vars
    assert v["CT_SOURCE"] == "Billboard"
    with session_scope(session_factory) as s:
        assert s.scalars(select(Call).where(Call.linkedid == "7.2")).first() is None


def test_unknown_hook_answers_and_server_keeps_serving(agi, data):
    res = call(agi.port, headers("nosuchhook"))
    assert res.commands[0].startswith('VERBOSE "calltracking: unknown hook')
    assert res.vars == {"CT_STATUS": "error"}
    assert call(agi.port, headers()).vars["CT_STATUS"] == "ok"


# ------------------------------------------------------- writes while the database is locked
@pytest.fixture
def quick_agi(db_url, session_factory, clock):
    """A FastAGI server with the production budgets: 300 ms per hook, 50 ms write wait."""
    from calltracking.attribution.catalogue import HookCache

    srv = ServerThread(make_config(db_url, agi__timeout_ms=300, agi__write_wait_ms=50),
                       session_factory, clock=clock, cache=HookCache(rules_ttl=0))
    yield srv
    srv.stop()


def _tags_of(session_factory, linkedid):
    with session_scope(session_factory) as s:
        return sorted(s.scalars(select(Tag.name).join(Call.tags).where(Call.linkedid == linkedid)))


def _eventually(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.02)
    return False


def test_tag_while_the_database_is_locked_answers_in_time_and_is_written_after(
        quick_agi, data, engine, session_factory):
    """The lock is held for 1.5 s (five budgets): the tag hook answers within its budget with
    the tag, and the tag is written once the lock is free, never dropped."""
    call(quick_agi.port, headers(args=("74950001001", "8.1")))
    with WriteLock(engine):
        answers = []
        for name in ("callback", "vip"):
            started = time.monotonic()
            answers.append((call(quick_agi.port, headers("tag", args=("8.1", name))).vars,
                            time.monotonic() - started))
        time.sleep(1.5 - sum(t for _, t in answers))
        assert _tags_of(session_factory, "8.1") == []             # (nothing got through the lock)
    assert [v for v, _ in answers] == [{"CT_TAG": "callback", "CT_STATUS": "ok"},
                                       {"CT_TAG": "vip", "CT_STATUS": "ok"}]
    assert max(t for _, t in answers) < 0.3 + 0.2              # the budget, plus the socket's share
    assert _eventually(lambda: _tags_of(session_factory, "8.1") == ["callback", "vip"])
    assert quick_agi.server.env.writer.stats["late"] >= 2


def test_tag_answered_with_the_fallback_is_still_written(quick_agi, data, session_factory):
    """The server answers the fallback without running the hook (too many jobs waiting):
    the tag goes to the writer all the same."""
    call(quick_agi.port, headers(args=("74950001001", "9.1")))
    quick_agi.server.max_backlog = 0
    v = call(quick_agi.port, headers("tag", args=("9.1", "vip"))).vars
    assert v == {"CT_TAG": "", "CT_STATUS": "fallback"}
    assert _eventually(lambda: _tags_of(session_factory, "9.1") == ["vip"])
    v = call(quick_agi.port, headers("tag", args=("9.1", ""))).vars      # bad arguments: nothing
    assert v["CT_STATUS"] == "fallback" and v["CT_TAG"] == ""


def test_tag_without_a_project_to_tag_in_is_an_error(agi, data, session_factory):
    with session_scope(session_factory) as s:
        from calltracking import entities as svc

        svc.add_project(s, "other", "Other")       # two projects, and the call is unknown
    agi.server.env.writer.row_wait = 0.3            # (2 s: another process may spool its row)
    v = call(agi.port, headers("tag", args=("10.1", "vip"))).vars
    assert v == {"CT_TAG": "", "CT_STATUS": "error"}
    with session_scope(session_factory) as s:
        assert s.scalars(select(Call).where(Call.linkedid == "10.1")).first() is None


def test_tag_waits_for_a_call_row_another_process_has_not_committed_yet(agi, data, db_url, session_factory):
    """Two projects; the tag reaches this server before the call's route row, spooled by
    another server process, is committed: the tag waits for the row and lands on it."""
    with session_scope(session_factory) as s:
        from calltracking import entities as svc

        svc.add_project(s, "other", "Other")
    other = ServerThread(make_config(db_url), session_factory)
    try:
        def route_later():
            time.sleep(0.4)
            call(other.port, headers(args=("74950001001", "10.2")))
        t = threading.Thread(target=route_later)
        t.start()
        v = call(agi.port, headers("tag", args=("10.2", "vip"))).vars
        t.join()
    finally:
        other.stop()
    assert v == {"CT_TAG": "vip", "CT_STATUS": "ok"}
    with session_scope(session_factory) as s:
        row = s.scalars(select(Call).where(Call.linkedid == "10.2")).one()
        assert row.project_id == data["project"] and [t.name for t in row.tags] == ["vip"]


def test_promo_while_the_database_is_locked_is_written_after(quick_agi, data, engine, session_factory):
    call(quick_agi.port, headers(args=("74950001001", "11.1")))
    with WriteLock(engine):
        started = time.monotonic()
        v = call(quick_agi.port, headers("promo", args=("11.1", "4242"))).vars
        took = time.monotonic() - started
        time.sleep(1.0)
    assert v["CT_PROMO"] == "valid" and v["CT_SOURCE"] == "Billboard" and took < 0.5

    def promo_written():
        with session_scope(session_factory) as s:
            row = s.scalars(select(Call).where(Call.linkedid == "11.1")).one()
            return row.attribution == "promo" and row.source_id == data["billboard"]

    assert _eventually(promo_written)


def test_the_writer_retries_a_locked_database_past_retry_seconds(engine, data, session_factory, caplog):
    """A database that cannot be reached is given up after ``retry_seconds``; a locked one is
    only slow: its writes are retried until done, in the order they were queued."""
    import logging

    from calltracking.hooks.route import ROUTE_OVERWRITE
    from calltracking.hooks.writer import CallWriter

    row = dict(pbx_id="pbx1", linkedid="12.1", project_id=data["project"], did="+74950001001",
               attribution="static", queue="sales", started_at=dt.datetime.now(dt.timezone.utc),
               via_agi=True, updated_at=dt.datetime.now(dt.timezone.utc))
    order = []
    w = CallWriter(engine, retry_seconds=0.2, busy_ms=100)
    try:
        with caplog.at_level(logging.WARNING, "calltracking.hooks"), WriteLock(engine):
            assert w.write(row, ROUTE_OVERWRITE, wait=0.05) is False       # pending
            fut = w.submit_work(lambda s: order.append(s.scalars(
                select(Call.linkedid).where(Call.linkedid == "12.1")).one()), "a check after it")
            time.sleep(1.5)                                   # seven times retry_seconds
            assert not fut.done()
        fut.result(10)
    finally:
        w.close()
    assert order == ["12.1"]                                  # the row was written first
    assert w.stats["failed"] == 0 and w.stats["retries"] >= 2
    assert "write(s) waiting for the database" in caplog.text

"""Pool assignment, sessions, hold expiry and reuse, bots, combined mode, promo codes (both DBs)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from calltracking.dni import assign as dni
from calltracking.dni import holds, projects
from calltracking.dni.request import DniError, UnknownProject, parse_request
from calltracking.attribution.lookup import attribute
from calltracking.db import session_scope
from calltracking.models import NumberPool, PoolReservation, PromoCode, TrackingNumber, VisitorSession

from support.dni import DEFAULT, FALLBACK, STATIC_BILLBOARD, make_project
from support.web import UA

T0 = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.timezone.utc)


def req(visitor="", ua=UA, **fields):
    return parse_request({"project": "acme", "visitor_id": visitor or None, **fields}, ua, "203.0.113.7")


def live_numbers(factory):
    with session_scope(factory) as s:
        return s.execute(select(TrackingNumber.number, func.count())
                         .join(PoolReservation, PoolReservation.tracking_number_id == TrackingNumber.id)
                         .where(PoolReservation.released_at.is_(None))
                         .group_by(TrackingNumber.number)).all()


def test_same_visitor_keeps_number_and_session(session_factory, acme):
    a = dni.assign(session_factory, req(utm_source="google", utm_term="pizza delivery"), T0)
    assert a.kind == "pool" and a.number.startswith("+7495000200") and a.visitor_id
    b = dni.assign(session_factory, req(a.visitor_id), T0 + dt.timedelta(minutes=2))
    assert (b.number, b.session_id) == (a.number, a.session_id)
    other = dni.assign(session_factory, req(), T0 + dt.timedelta(minutes=2))
    assert other.number != a.number and other.visitor_id != a.visitor_id
    with session_scope(session_factory) as s:
        vs = s.get(VisitorSession, a.session_id)
        assert (vs.utm_source, vs.keyword, vs.source_id) == ("google", "pizza delivery", acme["google"])
        assert (vs.device, vs.os, vs.browser, vs.ip) == ("desktop", "Linux", "Chrome", "203.0.113.7")
    # New campaign tags start a new session but the visitor keeps its number.
    c = dni.assign(session_factory, req(a.visitor_id, utm_source="billboard2", utm_campaign="x"),
                   T0 + dt.timedelta(minutes=3))
    assert c.number == a.number and c.session_id != a.session_id
    assert all(n == 1 for _, n in live_numbers(session_factory))


def test_never_used_first_then_least_recently_released(session_factory):
    make_project(session_factory, pool_size=3, hold_seconds=60)
    got = [dni.assign(session_factory, req(), T0).number for _ in range(3)]
    assert got == ["+74950002000", "+74950002001", "+74950002002"]
    # Keep the second number alive; the others expire and are released in order 0, 2.
    with session_scope(session_factory) as s:
        vid = s.scalars(select(VisitorSession.visitor_id).order_by(VisitorSession.id)).all()
    holds.heartbeat(session_factory, "acme", vid[1], T0 + dt.timedelta(seconds=50))
    assert holds.release_expired(session_factory, T0 + dt.timedelta(seconds=90)) == 2
    with session_scope(session_factory) as s:
        s.execute(TrackingNumber.__table__.update()
                  .where(TrackingNumber.number == "+74950002002")
                  .values(pool_released_at=T0 + dt.timedelta(seconds=95)))
    nxt = dni.assign(session_factory, req(), T0 + dt.timedelta(seconds=100))
    assert nxt.number == "+74950002000"            # released earlier than ...2002
    assert dni.assign(session_factory, req(), T0 + dt.timedelta(seconds=100)).number == "+74950002002"
    assert dni.assign(session_factory, req(), T0 + dt.timedelta(seconds=100)).kind == "fallback"


def test_heartbeat_extends_and_release_after_hold(session_factory):
    make_project(session_factory, pool_size=2, hold_seconds=300)
    a = dni.assign(session_factory, req(), T0)
    hb = holds.heartbeat(session_factory, "acme", a.visitor_id, T0 + dt.timedelta(seconds=250))
    assert hb.number == a.number and hb.hold_seconds == 300
    assert holds.release_expired(session_factory, T0 + dt.timedelta(seconds=400)) == 0   # extended
    assert holds.release_expired(session_factory, T0 + dt.timedelta(seconds=551)) == 1
    assert holds.heartbeat(session_factory, "acme", a.visitor_id, T0 + dt.timedelta(seconds=560)).number is None
    # Released: another visitor can have it; the first comes back to a free number of its own.
    with session_scope(session_factory) as s:
        tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == a.number)).one()
        assert tn.pool_held is False and tn.pool_released_at is not None
    again = dni.assign(session_factory, req(a.visitor_id), T0 + dt.timedelta(seconds=600))
    assert again.number == a.number                # its previous number, free again


def test_hold_end_is_when_the_release_statement_releases(session_factory):
    """holds.hold_end (the hold ledger's rule, in Python) and the release statement (SQL) agree,
    for a provisional hold and for a confirmed one."""
    make_project(session_factory, pool_size=2, hold_seconds=300)
    quiet = dni.assign(session_factory, req(), T0)
    active = dni.assign(session_factory, req(), T0)
    holds.heartbeat(session_factory, "acme", active.visitor_id, T0 + dt.timedelta(seconds=10))
    with session_scope(session_factory) as s:
        ends = {r.session_id: holds.hold_end(r.assigned_at, r.last_seen_at, 300)
                for r in s.scalars(select(PoolReservation))}
    assert ends == {quiet.session_id: T0 + dt.timedelta(seconds=60), active.session_id: T0 + dt.timedelta(seconds=310)}
    for end in sorted(ends.values()):
        assert holds.release_expired(session_factory, end - dt.timedelta(seconds=1)) == 0
        assert holds.release_expired(session_factory, end + dt.timedelta(seconds=1)) == 1


def test_hold_expiry_reuse_and_attribution_window(session_factory):
    ids = make_project(session_factory, pool_size=1, hold_seconds=120)
    a = dni.assign(session_factory, req(utm_source="google", utm_term="first"), T0)
    # The pool is exhausted while a holds the only number.
    b = dni.assign(session_factory, req(utm_term="second"), T0 + dt.timedelta(seconds=60))
    assert (b.kind, b.number, b.exhausted) == ("fallback", FALLBACK, True)
    # After the hold time, assignment releases the expired hold on the spot and reuses the number.
    c = dni.assign(session_factory, req(utm_term="third"), T0 + dt.timedelta(seconds=200))
    assert (c.kind, c.number) == ("pool", a.number)
    with session_scope(session_factory) as s:
        assert s.get(NumberPool, ids["pool"]).exhausted_count == 1
        att = attribute(s, a.number, T0 + dt.timedelta(seconds=230))
        assert att.kind == "dynamic" and att.session_id == c.session_id
        assert att.candidate_count == 2 and att.confidence == pytest.approx(0.5)
        late = attribute(s, a.number, T0 + dt.timedelta(seconds=30))
        assert late.session_id == a.session_id


def test_bots_get_the_default_number_and_no_session(session_factory, acme):
    for ua in ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
               "Mozilla/5.0 (compatible; YandexBot/3.0)", "curl/8.5.0", ""):
        r = dni.assign(session_factory, req(ua=ua))
        assert (r.kind, r.number, r.session_id) == ("bot", FALLBACK, None)
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(VisitorSession)) == 0


def test_combined_mode_static_number_and_default(session_factory, acme):
    r = dni.assign(session_factory, req(utm_source="Billboard"))
    assert (r.kind, r.number) == ("static", STATIC_BILLBOARD) and r.session_id
    with session_scope(session_factory) as s:
        s.execute(NumberPool.__table__.update().values(active=False))
    projects.invalidate_cache()
    r = dni.assign(session_factory, req(utm_source="unknown"))
    assert (r.kind, r.number) == ("default", DEFAULT)


def test_campaign_tag_maps_to_source(session_factory, acme):
    r = dni.assign(session_factory, req(utm_campaign="BRAND_spring"))
    with session_scope(session_factory) as s:
        assert s.get(VisitorSession, r.session_id).source_id == acme["google"]


def test_promo_code_when_pool_exhausted(session_factory):
    ids = make_project(session_factory, pool_size=1, promo_mode="exhausted")
    a = dni.assign(session_factory, req(), T0)
    assert a.promo is None
    b = dni.assign(session_factory, req(utm_source="billboard"), T0)   # static source: no pool
    assert b.promo is None
    c = dni.assign(session_factory, req(), T0)
    assert c.exhausted and c.promo and c.promo.isdigit() and len(c.promo) == 6
    again = dni.assign(session_factory, req(c.visitor_id), T0 + dt.timedelta(seconds=5))
    assert again.promo == c.promo                  # the same code for the same session
    with session_scope(session_factory) as s:
        code = s.scalars(select(PromoCode).where(PromoCode.code == c.promo)).one()
        assert code.session_id == c.session_id and code.project_id == ids["project"]
        # A source code wins over a session code.
        s.add(PromoCode(project_id=ids["project"], code="777", source_id=ids["google"]))
    d = dni.assign(session_factory, req(utm_source="google"), T0)
    assert d.promo == "777"


def test_request_validation():
    with pytest.raises(DniError):
        parse_request([], UA)
    with pytest.raises(DniError, match="project"):
        parse_request({"project": "<script>"}, UA)
    with pytest.raises(DniError, match="utm_source"):
        parse_request({"project": "acme", "utm_source": {"$gt": 1}}, UA)
    r = parse_request({"project": "acme", "visitor_id": "bad id!", "utm_term": "x" * 5000,
                           "referrer": "a\x00b\nc", "junk": 1}, UA)
    assert r.visitor_id == "" and len(r.fields["utm_term"]) == 200 and r.fields["referrer"] == "abc"


def test_unknown_project(session_factory):
    with pytest.raises(UnknownProject):
        dni.assign(session_factory, parse_request({"project": "nope"}, UA))


def test_reservation_written_elsewhere_is_respected(session_factory):
    """A live reservation inserted by other code (no pool_held hint) is never double-booked."""
    ids = make_project(session_factory, pool_size=2)
    with session_scope(session_factory) as s:
        tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002000")).one()
        vs = VisitorSession(project_id=ids["project"], visitor_id="elsewhere", first_seen=T0, last_seen=T0)
        s.add(vs)
        s.flush()
        s.add(PoolReservation(pool_id=ids["pool"], tracking_number_id=tn.id, session_id=vs.id,
                              assigned_at=T0, last_seen_at=T0))
    a = dni.assign(session_factory, req(), T0)
    assert a.number == "+74950002001"
    b = dni.assign(session_factory, req(), T0)
    assert b.kind == "fallback"
    assert all(n == 1 for _, n in live_numbers(session_factory))
    with session_scope(session_factory) as s:
        assert s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002000")).one().pool_held


def test_returning_visitor_with_new_tags_is_one_candidate(session_factory, acme):
    a = dni.assign(session_factory, req(utm_source="google", utm_term="first"), T0)
    b = dni.assign(session_factory, req(a.visitor_id, utm_source="google", utm_campaign="brand_spring",
                                        utm_term="second"), T0 + dt.timedelta(minutes=1))
    assert b.number == a.number and b.session_id != a.session_id
    with session_scope(session_factory) as s:
        att = attribute(s, a.number, T0 + dt.timedelta(minutes=2))
        assert att.session_id == b.session_id and att.visitor_session.keyword == "second"
        assert att.candidate_count == 1 and att.confidence == 1

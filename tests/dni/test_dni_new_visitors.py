"""The new visitors' batched path (calltracking.dni.new_visitors): batched writes, complete rows, recovery (both DBs)."""
from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from calltracking.dni import assign as dni
from calltracking.dni import new_visitors, projects
from calltracking.dni.request import parse_request
from calltracking.db import session_scope
from calltracking.models import PoolReservation, TrackingNumber, VisitorSession

from support.dni import make_project
from support.web import UA

T0 = dt.datetime(2026, 3, 4, 9, 0, 0, 123456, tzinfo=dt.timezone.utc)


def new_visitor(**fields):
    return parse_request({"project": "acme", **fields}, UA, "203.0.113.7")


def assign_by(path, factory, request, now):
    """A new visitor's number through the batched path alone (``batched``: an error fails the
    test) or the general path alone (``general``: prepare + complete, as for a known visitor)."""
    engine = factory.kw["bind"]
    plan = dni.prepare(engine, request, projects.project_info(engine, request.project), now)
    if path == "general":
        return dni.complete(plan)
    assert plan.fast is not None
    sid, number = new_visitors.assign_new(engine, plan.fast, plan.pool.id, plan.write_lock)
    return plan.fast_result(sid, number) if number is not None else dni.complete(plan, sid)


@pytest.mark.parametrize("path", ["batched", "general"])
def test_new_visitor_row_is_complete(session_factory, acme, path):
    """Both paths write the same session row and the same provisional reservation."""
    r = assign_by(path, session_factory, new_visitor(
        utm_source="google", utm_medium="cpc", utm_campaign="spring", utm_term="sofa", utm_content="ad1",
        gclid="G1", yclid="", referrer="https://www.google.com/", landing_page="https://shop.example/?a=1",
        ga_client_id="123.456"), T0)
    assert (r.provisional, r.hold_seconds) == (True, 60)
    assert (r.kind, r.number, r.pool_id) == ("pool", "+74950002000", acme["pool"])
    with session_scope(session_factory) as s:
        vs = s.get(VisitorSession, r.session_id)
        assert (vs.visitor_id, vs.project_id, vs.source_id) == (r.visitor_id, acme["project"], acme["google"])
        assert (vs.utm_source, vs.utm_medium, vs.utm_campaign, vs.utm_term, vs.utm_content) == (
            "google", "cpc", "spring", "sofa", "ad1")
        assert (vs.gclid, vs.keyword, vs.ga_client_id, vs.ip) == ("G1", "sofa", "123.456", "203.0.113.7")
        assert (vs.referrer, vs.landing_page) == ("https://www.google.com/", "https://shop.example/?a=1")
        assert (vs.device, vs.os, vs.browser, vs.user_agent) == ("desktop", "Linux", "Chrome", UA)
        assert vs.first_seen == vs.last_seen == T0          # read back aware, to the microsecond
        res = s.scalars(select(PoolReservation).where(PoolReservation.session_id == r.session_id)).one()
        assert res.assigned_at == res.last_seen_at == T0 and res.released_at is None
        tn = s.get(TrackingNumber, res.tracking_number_id)
        assert (tn.number, tn.pool_held) == (r.number, True)
    # the same visitor comes back (general path): same session, same number
    again = dni.assign(session_factory, new_visitor(visitor_id=r.visitor_id), T0 + dt.timedelta(seconds=5))
    assert (again.session_id, again.number) == (r.session_id, r.number)


@pytest.mark.parametrize("path", ["batched", "general"])
def test_both_paths_take_never_used_numbers_first_then_the_least_recently_released(session_factory, path):
    make_project(session_factory, pool_size=4)
    released = {"+74950002000": T0 - dt.timedelta(minutes=10), "+74950002002": T0 - dt.timedelta(minutes=20)}
    with session_scope(session_factory) as s:
        for number, at in released.items():
            s.execute(TrackingNumber.__table__.update().where(TrackingNumber.number == number)
                      .values(pool_released_at=at))
    got = [assign_by(path, session_factory, new_visitor(), T0) for _ in range(5)]
    assert [r.number for r in got[:4]] == ["+74950002001", "+74950002003", "+74950002002", "+74950002000"]
    assert (got[4].kind, got[4].exhausted) == ("fallback", True)


def test_keyword_falls_back_to_utm_term_on_both_paths(session_factory, acme):
    rows = []
    for path in ("batched", "general"):
        for fields in ({"utm_term": "sofa"}, {"utm_term": "sofa", "keyword": "red sofa"}):
            r = assign_by(path, session_factory, new_visitor(**fields), T0)
            with session_scope(session_factory) as s:
                rows.append((path, s.get(VisitorSession, r.session_id).keyword))
    assert rows == [("batched", "sofa"), ("batched", "red sofa"), ("general", "sofa"), ("general", "red sofa")]


def test_concurrent_new_visitors_each_get_their_own_reservation(session_factory):
    """Requests written in one batch: every answer matches the row of ITS session."""
    n = 40
    ids = make_project(session_factory, pool_size=n)
    barrier = threading.Barrier(n)

    def one(i):
        r = new_visitor(utm_term=f"kw{i}")
        barrier.wait(timeout=60)
        return i, dni.assign(session_factory, r)

    with ThreadPoolExecutor(n) as ex:
        results = list(ex.map(one, range(n)))
    assert all(r.kind == "pool" for _, r in results)
    assert len({r.number for _, r in results}) == n
    with session_scope(session_factory) as s:
        rows = {sid: (vid, term, number) for sid, vid, term, number in s.execute(
            select(VisitorSession.id, VisitorSession.visitor_id, VisitorSession.utm_term, TrackingNumber.number)
            .join(PoolReservation, PoolReservation.session_id == VisitorSession.id)
            .join(TrackingNumber, TrackingNumber.id == PoolReservation.tracking_number_id)
            .where(PoolReservation.released_at.is_(None)))}
        assert s.scalar(select(func.count()).select_from(VisitorSession)) == n
        assert s.scalar(select(func.count()).select_from(TrackingNumber).where(
            TrackingNumber.pool_id == ids["pool"], TrackingNumber.pool_held.is_(True))) == n
    for i, r in results:
        assert rows[r.session_id] == (r.visitor_id, f"kw{i}", r.number)


def test_writer_recovers_from_a_lost_connection(session_factory, acme):
    engine = session_factory.kw["bind"]
    first = dni.assign(session_factory, new_visitor(), T0)
    w = new_visitors.writer(engine, None)
    assert first.kind == "pool" and w.thread is not None and w.conn is not None
    if engine.dialect.name == "postgresql":                # the server ends the writer's session
        pid = w.conn[1].info.backend_pid
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    else:
        w.conn[1].close()
    after = [dni.assign(session_factory, new_visitor(), T0) for _ in range(3)]
    assert [a.kind for a in after] == ["pool"] * 3
    assert len({first.number, *(a.number for a in after)}) == 4
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(PoolReservation)) == 4


def test_writer_thread_ends_with_the_engine(db_url, session_factory, acme):
    from calltracking.db import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    assert dni.assign(make_sessionmaker(engine), new_visitor(), T0).kind == "pool"
    thread = new_visitors.writer(engine, None).thread
    assert thread is not None and thread.is_alive()
    engine.dispose()
    thread.join(10)
    assert not thread.is_alive()

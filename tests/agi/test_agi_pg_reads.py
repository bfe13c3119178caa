"""PostgreSQL: the route hook's reads run on the FastAGI server's event loop, on its own
asynchronous connections (agi/pg_reads.py); a lock, a killed connection or a database that
cannot be reached still answers every call within its budget."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select, text

from agi.pg_reads import APPLICATION_NAME, Lost, PgReads
from calltracking import entities as svc
from calltracking import hooks
from calltracking.attribution.rawsql import Query, Sync
from calltracking.db import make_engine, session_scope
from calltracking.models import Call, PoolReservation, Project, Source, TrackingNumber, VisitorSession
from support.agi_server import ServerThread
from support.config import make_config
from support.fastagi_client import call, headers
from support.polling import poll

pytestmark = pytest.mark.db


@pytest.fixture
def pg_only(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the event loop's own connections are PostgreSQL's (SQLite reads inline)")


@pytest.fixture
def loop_agi(pg_only, config, session_factory, clock, data):
    """The server as production runs it: the catalogue's snapshot, read before listening."""
    srv = ServerThread(config, session_factory, clock=clock, header_timeout=1.0)
    yield srv
    srv.stop()


def _route(port, linkedid, did="74950001001", **fields):
    return call(port, headers(args=(did, linkedid), **fields), timeout=5).vars


def _loop_backends(engine) -> list[int]:
    with engine.connect() as c:
        return list(c.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                              {"n": APPLICATION_NAME}).scalars())


def test_route_reads_go_through_the_loops_connections(loop_agi, data, engine, session_factory, clock):
    server = loop_agi.server
    reads = server.pg_reads
    assert reads is not None and reads.open_count == server.workers
    assert len(_loop_backends(engine)) == server.workers
    with session_scope(session_factory) as s:          # a visitor holds a pool number
        tn = s.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950002001")).one()
        vs = VisitorSession(project_id=data["project"], visitor_id="v1", source_id=data["google"],
                            first_seen=clock.now - dt.timedelta(minutes=3), last_seen=clock.now)
        s.add(vs)
        s.flush()
        s.add(PoolReservation(pool_id=data["pool"], tracking_number_id=tn.id, session_id=vs.id,
                              assigned_at=clock.now - dt.timedelta(minutes=3), last_seen_at=clock.now))
    static = _route(loop_agi.port, "pg.1")
    clock.now += dt.timedelta(minutes=1)
    repeat = _route(loop_agi.port, "pg.2", did="74950001002")
    pool = _route(loop_agi.port, "pg.3", did="74950002001", agi_callerid="79161110000")
    assert (static["CT_SOURCE"], static["CT_CALLER_TYPE"]) == ("Google Ads", "first")
    assert (repeat["CT_SOURCE"], repeat["CT_CALLER_TYPE"]) == ("Billboard", "repeat")
    assert (pool["CT_ATTRIBUTION"], pool["CT_SOURCE"], pool["CT_CONFIDENCE"]) == ("dynamic", "Google Ads", "1.000")
    assert reads.stats["reads"] == 3
    assert server.env._opened == [], "no thread opened a connection for these reads"
    # the same answer as the synchronous path (the classic script's, the CLI's)
    env = hooks.HookEnv(server.config, session_factory, clock=lambda: clock.now)
    variables, _ = hooks.plan_route(env, "74950002001", "pg.3", "79161110000", "Caller 0001")
    assert variables == pool
    env.close_connections()
    with session_scope(session_factory) as s:
        assert s.scalars(select(Call.session_id).where(Call.linkedid == "pg.3")).one() == vs.id


def test_a_number_the_snapshot_does_not_know_is_read_by_a_thread(loop_agi, data, session_factory):
    with session_scope(session_factory) as s:          # added after the snapshot was read
        svc.add_number(s, s.get(Project, data["project"]), "+74950001003",
                       source=s.get(Source, data["billboard"]))
    v = _route(loop_agi.port, "new.1", did="74950001003")
    assert v["CT_SOURCE"] == "Billboard" and v["CT_STATUS"] == "ok"
    assert loop_agi.server.pg_reads.stats["reads"] == 1
    assert loop_agi.server.env._opened, "the catalogue's read ran on a thread's connection"


def test_a_locked_table_answers_defaults_within_the_budget(loop_agi, data, engine, config):
    reads = loop_agi.server.pg_reads
    budget = config.agi.timeout_ms / 1000.0
    locker = engine.connect()
    tx = locker.begin()
    locker.execute(text("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE"))
    try:
        t0 = time.monotonic()
        v = _route(loop_agi.port, "lock.1")
        took = time.monotonic() - t0
    finally:
        tx.rollback()
        locker.close()
    assert v["CT_STATUS"] == "fallback" and v["CT_QUEUE"] == "sales"
    assert took < budget + 0.5
    # the late read ended on its own (statement_timeout) and gave its connection back
    poll(lambda: not reads.running and len(reads.idle) == reads.size, 5, "the late read's end", 0.02)
    assert reads.open_count == reads.size
    assert _route(loop_agi.port, "lock.2")["CT_STATUS"] == "ok"


def test_killed_connections_fall_back_to_threads_and_are_reopened(loop_agi, data, engine, session_factory):
    reads = loop_agi.server.pg_reads
    assert _route(loop_agi.port, "k.1")["CT_STATUS"] == "ok"
    pids = _loop_backends(engine)
    assert len(pids) == reads.size
    with engine.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"),
                  {"p": pids})
    for i in range(2, 2 + reads.size + 2):             # every dead connection met by a call
        v = _route(loop_agi.port, f"k.{i}")
        assert v["CT_STATUS"] == "ok" and v["CT_SOURCE"] == "Google Ads", v
    poll(lambda: reads.open_count == reads.size and len(_loop_backends(engine)) == reads.size,
         5, "the connections reopened", 0.02)
    assert reads.stats["lost"] >= 1 and reads.stats["opened"] >= reads.size + 1
    before = reads.stats["reads"]
    assert _route(loop_agi.port, "k.99")["CT_STATUS"] == "ok"
    assert reads.stats["reads"] == before + 1, "back on the loop's connections"
    with session_scope(session_factory) as s:
        got = sorted(s.scalars(select(Call.linkedid)))
    assert got == sorted([f"k.{i}" for i in range(1, 2 + reads.size + 2)] + ["k.99"])


# ------------------------------------------------------------------ PgReads itself
def _steps():
    one = yield Query("SELECT :a + 1", {"a": 41})
    rows = yield Query("SELECT g FROM generate_series(1, :n) AS g", {"n": 3}, many=True)
    synced = yield Sync(lambda conn: "from a thread")
    return one[0], [r[0] for r in rows], synced


def _reads(engine, url=None, size=2, timeout_ms=300):
    async def sync(fn):
        return fn(None)
    return PgReads(make_engine(url) if url else engine, size, timeout_ms, sync)


def test_steps_run_and_connections_are_shared(pg_only, engine):
    async def main():
        reads = _reads(engine, size=2)
        await reads.open(5)
        assert reads.open_count == 2 and len(reads.idle) == 2
        tasks = [reads.start(_steps, hooks.Budget(60)) for _ in range(10)]   # more reads than connections
        got = await asyncio.gather(*tasks)
        assert got == [(42, [1, 2, 3], "from a thread")] * 10
        assert reads.stats["reads"] == 10 and len(reads.idle) == 2 and not reads.waiters
        await reads.close()
        assert reads.idle == [] and reads.start(_steps, hooks.Budget(60)) is None
    asyncio.run(main())


def test_a_read_whose_call_already_answered_does_nothing(pg_only, engine):
    async def main():
        reads = _reads(engine, size=1)
        await reads.open(5)
        spent = hooks.Budget(60)
        spent.cancelled = True
        with pytest.raises(hooks.env.Cancelled):
            await reads.start(_steps, spent)
        assert reads.stats["reads"] == 0 and len(reads.idle) == 1
        await reads.close()
    asyncio.run(main())


def test_an_unreachable_database_leaves_the_reads_to_threads_until_it_answers(pg_only, engine, db_url):
    from sqlalchemy.engine import make_url
    url = make_url(db_url)
    bad = url.set(query={**url.query, "port": "1"})       # nobody listens there
    done = threading.Event()

    async def main():
        reads = _reads(None, url=bad.render_as_string(hide_password=False), size=2)
        await reads.open(5)
        assert reads.open_count == 0 and reads.start(_steps, hooks.Budget(60)) is None
        assert reads._reopening is not None                # tries again in the background
        reads.params = PgReads(engine, 2, 300, None).params      # the database is back
        deadline = time.monotonic() + 5
        while reads.open_count < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await reads.start(_steps, hooks.Budget(60)) == (42, [1, 2, 3], "from a thread")
        await reads.close()
        done.set()
    asyncio.run(main())
    assert done.is_set()


def test_a_broken_connection_raises_lost(pg_only, engine):
    async def main():
        reads = _reads(engine, size=1)
        await reads.open(5)
        with engine.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = :n"), {"n": APPLICATION_NAME})
        with pytest.raises(Lost):
            await reads.start(_steps, hooks.Budget(60))
        assert reads.open_count == 0 and reads.stats["lost"] == 1
        assert reads.start(_steps, hooks.Budget(60)) is None        # none open: the threads read
        await reads.close()
    asyncio.run(main())


def test_reads_stuck_behind_a_lock_count_until_they_end(pg_only, db_url, session_factory, clock,
                                                        data, engine):
    """A late read stays in flight until its statement ends: past ``max_backlog`` of them a
    call gets the defaults at once instead of waiting out its budget behind them. (The budget
    is 0.85 of timeout_ms less 5 ms; the statement stops at timeout_ms: 0.23 s after the
    first call's answer, the second call's time to find it still in flight.)"""
    srv = ServerThread(make_config(db_url, agi__timeout_ms=1500), session_factory, clock=clock,
                       header_timeout=1.0)
    try:
        server = srv.server
        server.max_backlog = 1
        locker = engine.connect()
        tx = locker.begin()
        locker.execute(text("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE"))
        try:
            first = _route(srv.port, "b.1")
            assert first["CT_STATUS"] == "fallback" and server.inflight == 1
            t0 = time.monotonic()
            second = _route(srv.port, "b.2")
            assert second["CT_STATUS"] == "fallback" and time.monotonic() - t0 < 0.2
        finally:
            tx.rollback()
            locker.close()
        poll(lambda: server.inflight == 0, 5, "the late reads' end", 0.02)
        assert _route(srv.port, "b.3")["CT_STATUS"] == "ok"
    finally:
        srv.stop()

"""The FastAGI call writer: group commit, a bad row fails alone, cancelled jobs are never
written, a database that stays down is given up on with an error (both databases)."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import threading
import time

from sqlalchemy import select

from calltracking.db import make_engine, session_scope
from calltracking.hooks.route import ROUTE_OVERWRITE
from calltracking.hooks.spool import Spool
from calltracking.hooks.writer import CallWriter
from calltracking.hooks.write_job import RELEASE_AFTER, WriteJob
from calltracking.models import Call
from support.agi_server import ServerThread
from support.config import make_config
from support.fastagi_client import call, headers
from support.polling import poll

T0 = dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.timezone.utc)


def _row(linkedid, project_id, attribution="static"):
    return dict(pbx_id="pbx1", linkedid=linkedid, project_id=project_id, did="+74950001001",
                caller_number="+79161110001", caller_name="", attribution=attribution,
                queue="sales", started_at=T0, via_agi=True, updated_at=T0)


def _linkedids(session_factory):
    with session_scope(session_factory) as s:
        return sorted(s.scalars(select(Call.linkedid)))


def test_calls_arriving_together_share_one_transaction(engine, session_factory, data):
    w = CallWriter(engine)
    jobs = [WriteJob(_row(f"g.{i}", data["project"]), ROUTE_OVERWRITE, 60) for i in range(5)]
    for j in jobs:                       # queued before the thread starts: one batch
        w.queue.put(j)
    w._start()
    for j in jobs:
        j.future.result(10)
    w.close()
    assert w.stats["batches"] == 1 and w.stats["rows"] == 5
    assert _linkedids(session_factory) == [f"g.{i}" for i in range(5)]


def test_a_bad_row_fails_alone(engine, session_factory, data, caplog):
    w = CallWriter(engine)
    jobs = [WriteJob(_row("b.1", data["project"]), ROUTE_OVERWRITE, 60),
            WriteJob(_row("b.2", data["project"], attribution="bogus"), ROUTE_OVERWRITE, 60),
            WriteJob(_row("b.3", data["project"]), ROUTE_OVERWRITE, 60)]
    for j in jobs:
        w.queue.put(j)
    with caplog.at_level(logging.ERROR, "calltracking.hooks"):
        w._start()
        for j in jobs:
            j.future.exception(10)       # wait for each outcome
        w.close()
    assert jobs[0].future.exception() is None and jobs[2].future.exception() is None
    assert jobs[1].future.exception() is not None
    assert _linkedids(session_factory) == ["b.1", "b.3"]
    assert "call b.2: could not write its row" in caplog.text
    assert w.stats["failed"] == 1


async def _until(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.005)


def test_a_loops_rows_go_to_the_thread_when_released_and_wake_the_loop_only_for_a_waiter(
        engine, session_factory, data, tmp_path):
    """An event loop's rows are in the spool at the end of its pass, but the writer thread gets
    them only at release() (the server: once the connection is closed), at the latest
    RELEASE_AFTER later. Nobody waits for them: no future is made and the loop is not woken;
    a hook that waits gets its commit, or the failure of a bad row."""
    w = CallWriter(engine, spool=Spool.open(tmp_path))

    async def main():
        loop = asyncio.get_running_loop()
        job = w.submit(_row("r.1", data["project"]), ROUTE_OVERWRITE, loop)
        await asyncio.sleep(0)                       # the end of the pass: hand_over
        assert w.spool.path.stat().st_size > 0       # on disk...
        time.sleep(0.1)                              # ...and held back, however long the loop is busy
        assert not job.settled and _linkedids(session_factory) == []
        w.release(loop)
        await _until(lambda: job.finished)
        assert job.error is None and job.waiter is None
        assert _linkedids(session_factory) == ["r.1"]

        late = w.submit(_row("r.2", data["project"]), ROUTE_OVERWRITE, loop)   # never released
        started = time.monotonic()
        await _until(lambda: late.finished)
        assert RELEASE_AFTER * 0.9 <= time.monotonic() - started < 5

        waited = w.submit(_row("r.3", data["project"]), ROUTE_OVERWRITE, loop)
        bad = w.submit(_row("r.4", data["project"], attribution="bogus"), ROUTE_OVERWRITE, loop)
        w.hand_over(loop)
        w.release(loop)
        for j in (waited, bad):
            fut = j.wait_on()
            if fut is not None:
                await asyncio.wait_for(fut, 10)
            assert j.finished
        assert waited.error is None and bad.error is not None

    try:
        asyncio.run(main())
    finally:
        w.close()
    assert _linkedids(session_factory) == ["r.1", "r.2", "r.3"]
    assert w.spool is None or not w.spool.path.exists() or w.spool.path.stat().st_size == 0


def test_a_closed_calls_row_goes_to_the_writer_at_once_only_when_no_other_call_is_open(
        db_url, session_factory, clock, data, monkeypatch):
    """With ``write_wait_ms = 0`` (production's default) a call's row goes to the writer
    thread when its connection closes if no other connection is open; with another one open
    it waits for the writer's release timer (made 30 s here), taken with the rows after it."""
    monkeypatch.setattr("calltracking.hooks.writer.RELEASE_AFTER", 30.0)
    srv = ServerThread(make_config(db_url, agi__write_wait_ms=0), session_factory, clock=clock,
                       header_timeout=30.0)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as other:
            other.sendall(b"agi_network_script: route\n")           # a header still coming
            poll(lambda: len(srv.server.connections) == 1, 5, "the other connection", 0.01)
            v = call(srv.port, headers(args=("74950001001", "busy.1"))).vars
            assert v["CT_STATUS"] == "ok"
            time.sleep(0.3)
            assert _linkedids(session_factory) == [], "held while the other call is open"
        poll(lambda: not srv.server.connections, 5, "the other connection closed", 0.01)
        v = call(srv.port, headers(args=("74950001001", "alone.1"))).vars
        assert v["CT_STATUS"] == "ok"
        poll(lambda: _linkedids(session_factory) == ["alone.1", "busy.1"], 5, "both rows", 0.01)
    finally:
        srv.stop()


def test_write_returns_at_once_when_committed(engine, session_factory, data):
    w = CallWriter(engine)
    try:
        assert w.write(_row("w.1", data["project"]), ROUTE_OVERWRITE, wait=5.0) is True
        threads = [threading.Thread(target=w.write, args=(_row(f"w.{i}", data["project"]),
                                                          ROUTE_OVERWRITE, 5.0))
                   for i in range(2, 12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        w.close()
    assert len(_linkedids(session_factory)) == 11
    assert w.stats["rows"] == 11 and w.stats["batches"] <= 11


def test_database_that_stays_down_is_given_up_with_an_error(tmp_path, caplog):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(os.urandom(4096))
    engine = make_engine(f"sqlite:///{bad}")
    w = CallWriter(engine, retry_seconds=0.6)
    job_row = _row("d.1", 1)
    try:
        with caplog.at_level(logging.ERROR, "calltracking.hooks"):
            assert w.write(job_row, ROUTE_OVERWRITE, wait=0.05) is False  # pending
            w.close(timeout=5.0)                          # retried, then given up
    finally:
        engine.dispose()
    assert w.stats["failed"] == 1 and w.stats["retries"] >= 1
    assert "call d.1: could not write its row" in caplog.text and "gave up after" in caplog.text


def test_a_writer_closed_past_its_timeout_ends_its_thread(tmp_path, caplog):
    """close() waits ``timeout`` for the pending writes; past it the thread gives them up and ends
    (it used to retry on for ever, a thread left behind in the process)."""
    bad = tmp_path / "garbage.db"
    bad.write_bytes(os.urandom(4096))
    engine = make_engine(f"sqlite:///{bad}")
    w = CallWriter(engine, retry_seconds=3600)              # would retry for an hour by itself
    try:
        with caplog.at_level(logging.ERROR, "calltracking.hooks"):
            assert w.write(_row("e.1", 1), ROUTE_OVERWRITE, wait=0.05) is False
            thread = w.thread
            w.close(timeout=0.5)
        thread.join(5)
        assert not thread.is_alive()
        assert "stopped with writes not yet committed" in caplog.text
    finally:
        engine.dispose()


def test_sqlite_wal_is_checkpointed_beside_the_commits_not_in_them(engine, session_factory, data):
    """SQLite: the writer's own commits never run the WAL checkpoint (that copy and sync is
    what made a batch wait ~10 ms); the checkpointer thread does it after the writes."""
    if engine.dialect.name != "sqlite":
        import pytest

        pytest.skip("SQLite's WAL; PostgreSQL checkpoints by itself")
    w = CallWriter(engine, checkpoint_interval=0.05)
    try:
        for i in range(30):
            assert w.write(_row(f"c.{i}", data["project"]), ROUTE_OVERWRITE, wait=5.0) is True
        raw = w._conn.connection.driver_connection
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        ck = w._checkpointer
        assert ck is not None
        deadline = time.monotonic() + 10
        while ck.stats["checkpoints"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ck.stats["checkpoints"] >= 1 and ck.stats["failed"] == 0
        # every frame of the WAL is in the database file
        busy, frames, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied
    finally:
        w.close()
    assert not ck.thread.is_alive()
    assert len(_linkedids(session_factory)) == 30

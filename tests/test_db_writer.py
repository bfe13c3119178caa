"""SQLite write transactions that read first: why web requests that may write begin IMMEDIATE."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from calltracking.db import make_sessionmaker, writer
from calltracking.models import Project, Source


def _other_write(db_path, name, timeout=0.2):
    """Another process's connection (the AMI listener, say) commits a write."""
    con = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
    try:
        con.execute("INSERT INTO sources (project_id, name, channel, short_label, active) "
                    "SELECT id, ?, 'other', '', 1 FROM projects", (name,))
    finally:
        con.close()


@pytest.fixture
def sqlite_only(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's WAL snapshot rule; PostgreSQL has no such failure")
    return engine.url.database


def _setup(session_factory):
    with session_factory() as s, s.begin():
        s.add(Project(key="p", name="P"))


def test_deferred_read_then_write_fails_when_someone_wrote_in_between(engine, session_factory,
                                                                     sqlite_only):
    _setup(session_factory)
    s = make_sessionmaker(engine)()
    try:
        p = s.scalars(select(Project)).one()               # the transaction starts as a read
        _other_write(sqlite_only, "listener")              # someone commits meanwhile
        s.add(Source(project_id=p.id, name="mine", channel="other"))
        with pytest.raises(Exception, match="database is locked"):
            s.flush()                                      # no busy wait can save it
    finally:
        s.rollback()
        s.close()


def test_immediate_transaction_makes_the_other_writer_wait_instead(engine, session_factory,
                                                                  sqlite_only):
    _setup(session_factory)
    s = make_sessionmaker(engine)(bind=writer(engine))
    try:
        p = s.scalars(select(Project)).one()               # BEGIN IMMEDIATE: write lock held
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _other_write(sqlite_only, "listener", timeout=0.1)   # it waits (here: gives up)
        s.add(Source(project_id=p.id, name="mine", channel="other"))
        s.commit()                                         # ours always goes through
    finally:
        s.close()
    _other_write(sqlite_only, "listener later")
    with session_factory() as s2:
        assert sorted(s2.scalars(select(Source.name))) == ["listener later", "mine"]


def test_web_requests_that_may_write_use_the_writer_engine(engine, session_factory):
    from webui import create_app
    from webui.context import db
    from calltracking.config import load_config

    cfg = load_config("/nonexistent.ini", env={}, require_file=False,
                      overrides={"database.url": str(engine.url), "web.secret_key": "k" * 40})
    app = create_app(cfg, session_factory, testing=True)
    sqlite = engine.dialect.name == "sqlite"
    for method, immediate in (("GET", False), ("HEAD", False), ("POST", sqlite), ("DELETE", sqlite)):
        with app.test_request_context("/", method=method):
            opts = db().connection().get_execution_options()
            assert bool(opts.get("sqlite_immediate")) is immediate, method


def test_cli_write_commands_wait_for_a_service_that_is_writing(run_cli, engine, session_factory,
                                                               sqlite_only):
    """A service holds the write lock and commits while `calltracking sources add` runs: the
    command (reads, then writes) waits for its turn instead of failing "database is locked"."""
    import threading
    import time

    _setup(session_factory)
    con = sqlite3.connect(sqlite_only, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO sources (project_id, name, channel, short_label, active) "
                "SELECT id, 'listener', 'other', '', 1 FROM projects")

    def commit_later():
        time.sleep(0.5)
        con.execute("COMMIT")
        con.close()

    t = threading.Thread(target=commit_later)
    t.start()
    try:
        res = run_cli("sources", "add", "p", "Billboard", ok=False)
    finally:
        t.join()
    assert res.exit_code == 0, res.output
    with session_factory() as s:
        assert sorted(s.scalars(select(Source.name))) == ["Billboard", "listener"]
    # read-only commands keep deferred transactions (they never hold the write lock)
    assert "Billboard" in run_cli("sources", "list", "p").output


def _hold_write_lock(db_url, seconds):
    """Another connection holds the write lock on ``sources`` for ``seconds`` (in a thread):
    SQLite's database write lock, PostgreSQL's EXCLUSIVE table lock. Returns the thread;
    the lock is held once this returns."""
    import threading
    import time

    from calltracking.db import make_engine

    holder = make_engine(db_url)
    taken = threading.Event()

    def hold():
        with writer(holder).connect() as conn, conn.begin():
            if holder.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE sources IN EXCLUSIVE MODE")
            else:
                conn.exec_driver_sql("UPDATE projects SET name = name")
            taken.set()
            time.sleep(seconds)
        holder.dispose()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert taken.wait(10)
    return t


def _short_waits(db_url):
    """An engine whose writers wait 100 ms for a lock (SQLite busy timeout / PostgreSQL
    lock_timeout), so a lock held longer makes each attempt fail."""
    from calltracking.db import make_engine

    if db_url.startswith("postgresql"):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        return create_engine(make_url(db_url).set(drivername="postgresql+psycopg"),
                             connect_args={"options": "-c lock_timeout=100"})
    return make_engine(db_url, busy_timeout_ms=100)


def test_run_write_runs_the_transaction_again_until_the_lock_is_free(db_url, session_factory, caplog):
    """The lock is held for 0.8 s; each attempt waits 100 ms: run_write's transaction (a read,
    then a write) is run again until it gets through, and is written once."""
    import logging
    import time

    from calltracking.db import run_write

    _setup(session_factory)
    engine = _short_waits(db_url)
    attempts = []

    def add_source(s):
        attempts.append(1)
        p = s.scalars(select(Project)).one()
        s.add(Source(project_id=p.id, name="from the job", channel="other"))
        s.flush()
        return p.key

    holder = _hold_write_lock(db_url, 0.8)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "calltracking.db"):
        assert run_write(engine, add_source, retry_for=30, what="test job") == "p"
    holder.join()
    engine.dispose()
    assert 0.6 < time.monotonic() - started < 10
    assert len(attempts) >= 2
    assert "test job: the database is locked (attempt 1" in caplog.text
    with session_factory() as s:
        assert list(s.scalars(select(Source.name))) == ["from the job"]


def test_run_write_gives_up_after_retry_for_and_writes_nothing(db_url, session_factory):
    import time

    from sqlalchemy.exc import OperationalError

    from calltracking.db import is_locked, run_write

    _setup(session_factory)
    engine = _short_waits(db_url)
    holder = _hold_write_lock(db_url, 3.0)
    started = time.monotonic()
    with pytest.raises(OperationalError) as err:
        run_write(engine, lambda s: s.add(Source(project_id=s.scalars(select(Project.id)).one(),
                                                 name="never", channel="other")), retry_for=0.5)
    took = time.monotonic() - started
    holder.join()
    engine.dispose()
    assert is_locked(err.value) and 0.4 < took < 2.5
    with session_factory() as s:
        assert list(s.scalars(select(Source.name))) == []


def test_a_writer_waits_at_most_its_own_wait_and_its_connection_stays_usable(engine, session_factory,
                                                                               sqlite_only):
    """``writer(engine, wait)`` (a hook's budget): BEGIN IMMEDIATE gives up after ``wait``, not
    the busy timeout (5 s); the connection is then as good as new: its next transaction is
    atomic and the busy timeout is back."""
    import time

    from sqlalchemy.exc import OperationalError

    _setup(session_factory)
    conn = writer(engine, wait=0.15).connect()
    holder = _hold_write_lock(str(engine.url), 1.0)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        conn.begin()
    assert 0.1 < time.monotonic() - started < 0.9
    holder.join()
    with pytest.raises(ZeroDivisionError):
        with conn.begin():
            conn.exec_driver_sql("INSERT INTO sources (project_id, name, channel, short_label, active) "
                                 "SELECT id, 'half', 'other', '', 1 FROM projects")
            1 / 0
    with conn.begin():
        conn.exec_driver_sql("INSERT INTO sources (project_id, name, channel, short_label, active) "
                             "SELECT id, 'whole', 'other', '', 1 FROM projects")
    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    conn.close()
    with session_factory() as s:
        assert list(s.scalars(select(Source.name))) == ["whole"]

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
    from webui.common import db
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

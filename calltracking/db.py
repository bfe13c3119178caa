"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, busy_timeout_ms: int = 5000, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with the settings our data needs.

    SQLite: WAL journal, foreign keys enforced, a busy timeout, and the
    parent directory created. PostgreSQL: psycopg 3, a bounded pool with
    pre-ping so a restarted server does not break the first query.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database
        if db and db != ":memory:" and not db.startswith("file:"):
            parent = os.path.dirname(os.path.abspath(db))
            os.makedirs(parent, exist_ok=True)
        engine = create_engine(
            u,
            echo=echo,
            connect_args={"timeout": busy_timeout_ms / 1000.0, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # pysqlite's own transaction handling breaks SAVEPOINT and emits
            # BEGIN lazily; let SQLAlchemy emit BEGIN itself.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # ``sqlite_immediate``: take the write lock at BEGIN. A deferred transaction that
            # reads and then writes fails at once with "database is locked" when another
            # connection committed in between (WAL snapshot); one that starts IMMEDIATE
            # waits for the lock (busy timeout) instead. See :func:`writer`.
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=True)


def engine_from_config(cfg) -> Engine:
    d = cfg.database
    return make_engine(d.url, d.busy_timeout_ms, d.pool_size, d.echo)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def writer(engine: Engine) -> Engine:
    """The engine for a transaction that will write: on SQLite its transactions begin
    IMMEDIATE (see ``_sqlite_begin``); elsewhere the engine itself."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_immediate=True)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

"""Engines and sessions for SQLite (embedded default) and PostgreSQL, and the write discipline.

**Writes.** SQLite has one writer at a time. In WAL mode a *deferred* transaction that reads
and then writes fails at once with "database is locked" (``SQLITE_BUSY_SNAPSHOT``) whenever
another connection committed since its first read, whatever the busy timeout: its snapshot
is stale and it cannot be upgraded. So every transaction that writes begins ``IMMEDIATE``
(takes the write lock at ``BEGIN``, waiting its turn) and can never fail on a lock after
that. The ways in, from the least to the most protected:

- :func:`writer` -- the engine of such transactions (web requests that may write, CLI
  commands that change data);
- :func:`write_sessionmaker` / :func:`write_scope` -- sessions / one committed transaction on it;
- :func:`run_write` -- ``fn(session)`` in such a transaction, run again while the database
  stays locked, for a bounded time (background writers: the scheduler's bookkeeping and jobs).

A writer waits for the lock ``[database] busy_timeout_ms`` unless it asks for less
(``wait``: the AGI hooks' time budget). PostgreSQL has row locks and no such failure;
:func:`run_write` retries its lock errors (lock timeout, deadlock, serialization).
Readers keep deferred transactions: they never take the write lock.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TypeVar, Union

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: execution option: seconds a ``BEGIN IMMEDIATE`` may wait for the write lock (SQLite)
WRITE_WAIT = "ct_write_wait"
#: how long :func:`run_write` keeps trying while the database stays locked, by default
RETRY_SECONDS = 60.0
#: PostgreSQL errors worth running the transaction again: serialization failure, deadlock,
#: lock not available (lock_timeout)
_PG_LOCKED = ("40001", "40P01", "55P03")


def make_engine(url: str, busy_timeout_ms: int = 5000, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with the settings our data needs.

    SQLite: WAL journal, foreign keys enforced, a busy timeout, the parent
    directory created, and ``BEGIN IMMEDIATE`` for the transactions of
    :func:`writer`. PostgreSQL: psycopg 3, a bounded pool with pre-ping so a
    restarted server does not break the first query.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database
        if db and db != ":memory:" and not db.startswith("file:"):
            _create_private(db)
        engine = create_engine(
            u,
            echo=echo,
            connect_args={"timeout": busy_timeout_ms / 1000.0, "check_same_thread": False},
        )
        busy_ms = int(busy_timeout_ms)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # pysqlite's own transaction handling breaks SAVEPOINT and emits
            # BEGIN lazily; let SQLAlchemy emit BEGIN itself (_sqlite_do_begin).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # the transaction's kind, for _sqlite_do_begin (which only sees the driver connection)
            opts = conn.get_execution_options()
            conn.connection.info["ct_begin"] = (bool(opts.get("sqlite_immediate")), opts.get(WRITE_WAIT))

        def _sqlite_do_begin(fairy):
            # Emitted here, not in the "begin" event: a failure (the lock not had in time) then
            # goes through SQLAlchemy's own error handling and leaves the connection usable.
            immediate, wait = fairy.info.pop("ct_begin", (False, None))
            raw = fairy.driver_connection
            if not immediate:
                raw.execute("BEGIN")
                return
            _begin_immediate(raw, busy_ms / 1000.0 if wait is None else wait, busy_ms)

        engine.dialect.do_begin = _sqlite_do_begin
        return engine

    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=True)


def _create_private(path: str) -> None:
    """Create a SQLite database file's directory (0750) and the empty file itself (0640) when
    missing, so that nobody but the service user and its group can ever read it: SQLite then
    gives its -wal and -shm files the database file's mode. Existing ones are left as they are."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o750, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    except FileExistsError:
        pass


#: one attempt of BEGIN IMMEDIATE, in ms. SQLite's busy handler polls a lock after 1, 2, 5,
#: 10, 15, 20, 25... ms and from 228 ms on every 100 ms: a writer that has waited that long
#: loses the lock to the newcomers still polling finely. Attempts of 20 ms restart that
#: schedule, so a waiter keeps polling every few ms. Measured, three threads re-taking the
#: lock back to back for 10 ms each, the worst wait of 30 other writes (6 runs): 0.04-0.26 s
#: in 20 ms attempts, 0.003-3.4 s in one 5 s attempt.
_BEGIN_SLICE_MS = 20


def _begin_immediate(raw: sqlite3.Connection, wait: float, busy_ms: int) -> None:
    """``BEGIN IMMEDIATE`` on the driver connection ``raw``, waiting for the write lock at most
    ``wait`` seconds (in slices, see :data:`_BEGIN_SLICE_MS`); the busy timeout of the
    transaction's statements is ``busy_ms`` again afterwards. Raises "database is locked"."""
    deadline = time.monotonic() + max(wait, 0.0)
    current = None
    try:
        while True:
            ms = max(1, min(_BEGIN_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
            if ms != current:
                raw.execute(f"PRAGMA busy_timeout={ms}")
                current = ms
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not is_locked(e) or time.monotonic() >= deadline:
                    raise
    finally:
        raw.execute(f"PRAGMA busy_timeout={busy_ms}")


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


def writer(engine: Engine, wait: Optional[float] = None) -> Engine:
    """The engine for transactions that will write: on SQLite they begin IMMEDIATE, waiting
    for the write lock at most ``wait`` seconds (default: the busy timeout); elsewhere the
    engine itself."""
    if engine.dialect.name != "sqlite":
        return engine
    if wait is None:
        return engine.execution_options(sqlite_immediate=True)
    return engine.execution_options(sqlite_immediate=True, **{WRITE_WAIT: float(wait)})


FactoryOrEngine = Union[sessionmaker, Engine]


def bind_of(factory_or_engine: FactoryOrEngine) -> Engine:
    """The engine of a session factory (or the engine itself)."""
    if isinstance(factory_or_engine, Engine):
        return factory_or_engine
    return factory_or_engine.kw["bind"]


def write_sessionmaker(factory_or_engine: FactoryOrEngine, wait: Optional[float] = None) -> sessionmaker[Session]:
    """Sessions whose transactions write safely (:func:`writer`): give it to code that reads
    and then writes in one ``session_scope`` (the scheduler's jobs, the AMI listener's store)."""
    return make_sessionmaker(writer(bind_of(factory_or_engine), wait))


def write_scope(factory_or_engine: FactoryOrEngine, wait: Optional[float] = None):
    """One write transaction (:func:`writer`): commit on success, roll back on any error.
    On SQLite it holds the write lock from the start: keep it short (no file or network work
    inside)."""
    return session_scope(write_sessionmaker(factory_or_engine, wait))


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` means "another transaction holds the lock; try again": SQLite's
    "database is locked"/busy, PostgreSQL's lock timeout, deadlock or serialization failure."""
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    return (getattr(orig, "sqlstate", None) or "") in _PG_LOCKED


def run_write(factory_or_engine: FactoryOrEngine, fn: Callable[[Session], T],
              retry_for: float = RETRY_SECONDS, what: str = "write") -> T:
    """``fn(session)`` in one write transaction (:func:`write_scope`), committed; returns its
    result. While the database stays locked (:func:`is_locked`) the whole transaction is run
    again, with a short back-off, for up to ``retry_for`` seconds (a WARNING every 10 s
    while it waits; on SQLite each attempt itself waits the busy timeout); then the last
    error is raised. Any other
    error is raised at once. ``fn`` must therefore be safe to run twice (only its
    committed run counts)."""
    started = time.monotonic()
    deadline, warned = started + retry_for, None
    pause, attempt = 0.01, 0
    factory = write_sessionmaker(factory_or_engine)
    while True:
        attempt += 1
        try:
            with session_scope(factory) as s:
                return fn(s)
        except DBAPIError as e:
            now = time.monotonic()
            if not is_locked(e) or now + pause >= deadline:
                raise
            if warned is None or now - warned >= 10.0:     # one line per 10 s of waiting
                warned = now
                log.warning("%s: the database is locked (attempt %d, %.1f s); trying again",
                            what, attempt, now - started)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

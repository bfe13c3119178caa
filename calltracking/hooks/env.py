"""What every hook runs with: its environment (:class:`HookEnv`) and its time budget.

A hook answers within ``[agi] timeout_ms``: the adapter gives its database work a
:class:`Budget` and answers with the defaults (:func:`calltracking.hooks.answer.defaults`)
when the work fails or is late; the late work is told not to write (:class:`Cancelled`).

Writes: under the FastAGI server every write goes to its writer thread
(:mod:`calltracking.hooks.writer`), which retries a locked database until the write is
done; a call row is in the spool first (:mod:`calltracking.hooks.spool`); a hook waits
for the commit at most :func:`write_wait` and answers anyway. The
classic script writes itself, in one transaction within the budget
(:func:`write_in_budget`).
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from sqlalchemy.orm import Session

from calltracking import db
from calltracking.attribution import lookup, routing
from calltracking.attribution.catalogue import HookCache
from calltracking.attribution.rawsql import autocommit, discard, disconnected
from calltracking.hooks.spool import NO_SPOOL_WAIT_MS
from calltracking.models import utcnow

if TYPE_CHECKING:
    from calltracking.hooks.writer import CallWriter

log = logging.getLogger("calltracking.hooks")

_NEVER = float("inf")


class Cancelled(Exception):
    """The adapter already answered with the defaults: do not write anything."""


class Unreachable(Exception):
    """The database cannot be reached: the hook answers with the defaults (its write queued)."""


class Budget:
    """The time left for one hook's database work; shared by the adapter and the worker."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.cancelled = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise :class:`Cancelled` once the adapter answered without this work, or the time is up."""
        if self.cancelled or self.remaining() <= 0:
            raise Cancelled()


@dataclass
class HookEnv:
    """A hook's configuration, session factory, clock, catalogue cache and (FastAGI) writer."""

    config: object                                  # calltracking.config.Config
    session_factory: Callable[[], Session]
    clock: Callable = utcnow                        # aware UTC "now"; tests inject their own
    cache: HookCache = field(default_factory=HookCache)
    writer: Optional["CallWriter"] = None           # FastAGI's writer thread; None: write in
                                                    # the hook (classic script, CLI)

    _local: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list = field(default_factory=list, repr=False)

    @property
    def engine(self):
        return self.session_factory.kw["bind"]

    @property
    def dialect(self) -> str:
        """The database's dialect name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def region(self) -> str:
        return self.config.general.default_region

    @property
    def pbx_id(self) -> str:
        return self.config.general.pbx_id

    def default_queue(self, project) -> str:
        """:func:`routing.default_queue` of ``project`` (None: ``[general] default_queue``)."""
        return routing.default_queue(project.default_queue if project is not None else "",
                                     self.config.general.default_queue)

    def first_call_window(self, project) -> int:
        """Days back a caller's earlier call makes this one a repeat (0: ever): the project's
        ``first_call_window_days``, else ``[general] first_call_window_days``."""
        return lookup.first_call_window(project.first_call_window_days if project is not None else None,
                                        self.config.general.first_call_window_days)

    # ------------------------------------------------------------ reads
    @contextmanager
    def connection(self):
        """This thread's own connection for the hot path's reads, kept open between calls:
        no pool checkout and no pre-ping round trip per call (a dropped connection is
        replaced by :meth:`read`). The driver is in autocommit mode (PostgreSQL: each read
        its own snapshot, nothing left open); a transaction SQLAlchemy began (SQLite) is
        rolled back after use."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            self._opened = [c for c in self._opened if not c.closed] + [conn]
            if conn.dialect.name == "sqlite":
                local = self._local
                raw = conn.connection.dbapi_connection
                raw.set_progress_handler(lambda: time.monotonic() > getattr(local, "deadline", _NEVER), 1000)
                # A read that waits for a lock (WAL recovery, an exclusive lock of a migration)
                # sleeps inside SQLite, where the progress handler is not called: it may not wait
                # longer than the hook's whole budget (these connections only read; they are
                # thrown away, never returned to the pool, by close_connections).
                raw.execute(f"PRAGMA busy_timeout={int(self.config.agi.timeout_ms)}")
        try:
            autocommit(conn)
            yield conn
        finally:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - broken: the next call opens a new one
                self._local.conn = None
                discard(conn)

    @contextmanager
    def deadline(self, at: float):
        """SQLite: this thread's reads stop with ``sqlite3.OperationalError`` ("interrupted")
        once ``time.monotonic()`` passes ``at`` (the reads the FastAGI server runs on its event
        loop: a read must not hold up every other call past the hook's budget)."""
        self._local.deadline = at
        try:
            yield
        finally:
            self._local.deadline = _NEVER

    def read(self, fn):
        """``fn(conn)`` on this thread's kept-open connection; when the database dropped that
        connection (restart, admin kill), once more on a fresh one instead of failing the call."""
        for attempt in (1, 2):
            with self.connection() as conn:
                try:
                    return fn(conn)
                except Exception as e:
                    if attempt == 2 or not disconnected(conn, e):
                        raise
                    log.info("database connection lost (%s); reconnecting", type(e).__name__)
                    conn.invalidate()

    def close_connections(self) -> None:
        """Close the threads' connections (the server is stopping; its threads are idle)."""
        for conn in self._opened:
            discard(conn)
        self._opened = []


# ------------------------------------------------------------------ writes
def commit_wait_ms(config, spooled: bool) -> int:
    """Milliseconds a hook waits for its row's commit before the channel goes on: ``[agi]
    write_wait_ms``; for a row that is not in the spool (none is configured or usable) at
    least :data:`~calltracking.hooks.spool.NO_SPOOL_WAIT_MS`, since a row still queued in
    memory is lost if the process dies."""
    wait_ms = config.agi.write_wait_ms
    return wait_ms if spooled else max(wait_ms, NO_SPOOL_WAIT_MS)


def write_wait(env: HookEnv, budget: Optional[Budget], spooled: bool = True) -> float:
    """Seconds a hook waits for its queued write to commit: :func:`commit_wait_ms`, and at
    most four fifths of the budget left (the rest is for answering the channel)."""
    wait = commit_wait_ms(env.config, spooled) / 1000.0
    if budget is not None:
        wait = min(wait, budget.remaining() * 0.8)
    return max(wait, 0.0)


def write_in_budget(session_factory, budget: Optional[Budget], work: Callable[[Session], None]) -> None:
    """Run ``work`` in one write transaction that gives up when the budget is spent.

    SQLite: the transaction begins IMMEDIATE (:func:`calltracking.db.writer`), waiting for
    the write lock at most the time left; once it has the lock, none of ``work``'s reads
    and writes can fail with "database is locked". PostgreSQL: ``statement_timeout`` for
    this transaction. The classic AGI script writes this way; the FastAGI server hands its
    writes to :class:`calltracking.hooks.writer.CallWriter` instead.
    """
    if budget is not None:
        budget.check()
    wait = max(budget.remaining(), 0.001) if budget is not None else None
    session = session_factory(bind=db.writer(session_factory.kw["bind"], wait))
    try:
        conn = session.connection()
        if budget is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(budget.remaining() * 1000))}")
        work(session)
        if budget is not None:
            budget.check()      # answered with the defaults meanwhile: keep the DB consistent
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

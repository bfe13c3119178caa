"""PostgreSQL reads on the FastAGI server's event loop, on asynchronous psycopg connections.

A hook whose reads are written as steps (:data:`calltracking.attribution.rawsql.Reads`, the
``route`` hook) has them run here instead of in a thread of the server's pool: each query is
sent and its rows awaited on the loop, with no hand-off to a thread and back and no thread
holding the interpreter lock while the loop has calls to answer. Measured by
``bench/pg_reads.py`` on this project's 2-core machine (the route hook's first-call read, 16 at
a time): 0.049-0.061 ms of CPU a read and a p99 of 1.04-1.42 ms, against 0.156-0.165 ms and
5.07-6.12 ms through a thread pool.

The rules:

- ``size`` connections (``[agi] workers``), opened when the server starts and, when one is
  lost, opened again in the background (an attempt a second at most). A read takes an idle
  one, or waits for the next one freed; while none is open (the database is down or
  restarting) :meth:`PgReads.start` returns None and the server uses its threads, as before.
- Each connection is in autocommit mode (a read leaves no transaction open) and its
  statements stop on the server after the hook's budget (``statement_timeout``).
- A read runs in its own task: the call waits for it at most its budget and then answers
  with the defaults; the late read is never cancelled in the middle of a query (psycopg would
  then wait for the server's cancel), it ends on its own and frees its connection.
- A read that finds the budget spent (the call already answered) when it gets a connection
  does nothing. A read whose connection broke raises :class:`Lost`: the server reads again
  through its threads (which reconnect), within what is left of the budget.
- A :class:`~calltracking.attribution.rawsql.Sync` step (a DID the catalogue's snapshot does
  not know) goes to the server's threads (``sync``), the connection kept meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable, Optional

import psycopg
from psycopg import pq

from calltracking.attribution.rawsql import Query, Reads, for_dialect

log = logging.getLogger("calltracking.agi")

#: how these connections show in ``pg_stat_activity`` (unless the database URL names one)
APPLICATION_NAME = "calltracking-agi-loop"
#: seconds between two attempts to open the missing connections
REOPEN_EVERY = 1.0
#: seconds an attempt to open the connections may take in the background
CONNECT_WAIT = 10.0


class Lost(Exception):
    """The read's connection broke (or none is open): read through the threads instead."""


class PgReads:
    """``size`` asynchronous connections to the engine's PostgreSQL database and the reads run
    on them (the module's docstring)."""

    def __init__(self, engine, size: int, statement_timeout_ms: int,
                 sync: Callable[[Callable], Awaitable]):
        _, params = engine.dialect.create_connect_args(engine.url)
        params.pop("context", None)         # SQLAlchemy's adapters; psycopg's own do here
        params.setdefault("application_name", APPLICATION_NAME)
        self.statement_timeout_ms = max(1, int(statement_timeout_ms))
        timeout = f"-c statement_timeout={self.statement_timeout_ms}"
        params["options"] = f"{params.get('options', '')} {timeout}".strip()
        self.params = params
        self.size = max(1, size)
        self.sync = sync
        self.idle: list[psycopg.AsyncConnection] = []
        self.waiters: deque[asyncio.Future] = deque()
        self.open_count = 0
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._reopening: Optional[asyncio.Task] = None
        self.running: set[asyncio.Task] = set()
        self._closed = False
        self.stats = {"reads": 0, "lost": 0, "opened": 0}

    # ------------------------------------------------------------ connections
    async def open(self, wait: float) -> None:
        """Open the connections, waiting at most ``wait`` seconds (those not open then are
        opened in the background)."""
        self.loop = asyncio.get_running_loop()
        try:
            await self._fill(wait)
        finally:
            if self.open_count < self.size:
                self._reopen_later()

    async def _fill(self, wait: float) -> None:
        missing = self.size - self.open_count
        try:
            results = await asyncio.wait_for(asyncio.gather(
                *(self._connect() for _ in range(missing)), return_exceptions=True), wait)
        except asyncio.TimeoutError:
            results = [TimeoutError(f"no connection within {wait:g} s")]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            log.warning("FastAGI: could not open %d of %d PostgreSQL connections for the loop's "
                        "reads (%s); reading through threads meanwhile", len(errors), missing,
                        str(errors[0]).splitlines()[0] if str(errors[0]) else type(errors[0]).__name__)

    async def _connect(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            autocommit=True, **self.params)
        if self._closed:
            await conn.close()
            return
        self.open_count += 1
        self.stats["opened"] += 1
        self._give(conn)

    def _reopen_later(self) -> None:
        if self._reopening is None and not self._closed:
            self._reopening = self.loop.create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            while not self._closed and self.open_count < self.size:
                await asyncio.sleep(REOPEN_EVERY)
                if not self._closed:
                    await self._fill(CONNECT_WAIT)
        finally:
            self._reopening = None

    async def close(self) -> None:
        """Close the connections, once the reads still running ended (each is bounded by its
        ``statement_timeout``; given at most a second, then cancelled)."""
        self._closed = True
        if self._reopening is not None:
            self._reopening.cancel()
        if self.running:
            _, late = await asyncio.wait(self.running, timeout=1.0)
            for task in late:
                task.cancel()
        idle, self.idle = self.idle, []
        for conn in idle:
            await conn.close()
        self._fail_waiters()

    # ------------------------------------------------------------ reads
    def start(self, reads: Callable[[], Reads], budget) -> Optional[asyncio.Task]:
        """A task running the steps of ``reads()``; None while no connection is open."""
        if self.open_count == 0 or self._closed:
            return None
        task = self.loop.create_task(self._run(reads, budget))
        self.running.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task) -> None:
        self.running.discard(task)
        if not task.cancelled():
            task.exception()            # a late read's failure: the call already fell back

    async def _run(self, reads: Callable[[], Reads], budget):
        if self.idle:
            conn = self.idle.pop()
        else:
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            conn = await waiter                 # Lost when the last connection went meanwhile
        ok = False
        try:
            budget.check()                      # the call answered without us meanwhile
            result = await self._drive(conn, reads())
            ok = True
            return result
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            if conn.closed or conn.broken:
                raise Lost(str(e)) from e
            raise
        finally:
            self._give(conn, ok)

    async def _drive(self, conn: psycopg.AsyncConnection, reads: Reads):
        value = None
        while True:
            try:
                step = reads.send(value)
            except StopIteration as done:
                self.stats["reads"] += 1
                return done.value
            if type(step) is Query:
                cur = await conn.execute(for_dialect("postgresql", step.sql), step.params)
                value = await (cur.fetchall() if step.many else cur.fetchone())
            else:
                value = await self.sync(step.fn)

    def _give(self, conn: psycopg.AsyncConnection, ok: bool = True) -> None:
        """``conn`` back to a waiting read, or idle; a broken one is closed and replaced."""
        usable = not conn.closed and (ok or conn.info.transaction_status == pq.TransactionStatus.IDLE)
        if not usable or self._closed:
            if not conn.closed:
                self.loop.create_task(conn.close())
            self.open_count -= 1
            if not self._closed:
                self.stats["lost"] += 1
                log.info("FastAGI: a PostgreSQL connection of the loop's reads is lost; "
                         "opening another")
                if self.open_count == 0:
                    self._fail_waiters()
                self._reopen_later()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def _fail_waiters(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Lost("no PostgreSQL connection is open"))

"""Group commit of the FastAGI hooks' call rows: one writer thread, one transaction per batch.

Every ``route`` answer upserts its call row. Done one transaction per call, the
commits and the session set-up cost more than the rest of the hook; here the
calls that arrive together share one transaction (``executemany`` of the same
upsert), which keeps the FastAGI server fast under a burst.

The FastAGI server (:meth:`CallWriter.submit`) waits for the commit at most
``[agi] write_wait_ms``. Normally the row is committed well before that; when
the database is slow to write (SQLite locked by a long transaction, a disk
stall) the channel goes on anyway and the row is written in the background as
soon as the database allows, retried for ``retry_seconds``. A failing batch is
retried row by row, so one bad row fails alone.

PostgreSQL: the writer's connection is in autocommit mode with
``synchronous_commit = off``: a batch of one shape is one statement, one round
trip, no flush to wait for. SQLite: see :class:`Checkpointer`.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from . import hookdb
from .loopwake import settle_batch

log = logging.getLogger("calltracking.hooks")

_STOP = object()


class _Job:
    __slots__ = ("values", "overwrite", "future", "give_up_at", "afut", "loop", "settled")

    def __init__(self, values: dict, overwrite: tuple, retry_seconds: float, loop=None):
        self.values, self.overwrite = values, overwrite
        self.future: Future = Future()
        self.give_up_at = time.monotonic() + retry_seconds
        self.loop = loop                # asyncio caller: settled on its loop, in bulk
        self.afut = loop.create_future() if loop is not None else None
        self.settled = False


class CallWriter:
    """The writer thread (started on first use); :meth:`close` drains and stops it."""

    def __init__(self, engine: Engine, max_batch: int = 200, retry_seconds: float = 60.0,
                 busy_ms: int = 2000, checkpoint_interval: float = 1.0):
        self.engine = engine
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self.busy_ms = busy_ms          # how long one attempt may wait for a lock
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: Optional[threading.Thread] = None
        self.lock = threading.Lock()
        self.stats = {"batches": 0, "rows": 0, "failed": 0, "late": 0, "retries": 0}
        self._conn = None               # the writer thread's own connection
        self._checkpointer: Optional[Checkpointer] = None      # SQLite
        self.checkpoint_interval = checkpoint_interval  # SQLite: seconds between checkpoints
        self._to_settle: list = []      # (event loop, asyncio future, None, exception or None)

    # ----------------------------------------------------------------- API
    def write(self, values: dict, overwrite: tuple, wait: float = 5.0) -> bool:
        """From a thread: upsert one call row. True once committed; False when still pending
        after ``wait`` seconds: it is then written in the background. Raises when the write
        failed for good within the wait."""
        job = _Job(values, overwrite, self.retry_seconds)
        self._start()
        self.queue.put(job)
        try:
            job.future.result(wait)
        except TimeoutError:
            self.stats["late"] += 1
            return False
        return True

    def submit(self, values: dict, overwrite: tuple, loop) -> "asyncio.Future":
        """From an event loop: queue the upsert, return an asyncio future of its commit. The
        futures of a batch are settled with one ``call_soon_threadsafe`` per loop (waking the
        loop once per batch, not once per call)."""
        job = _Job(values, overwrite, self.retry_seconds, loop)
        self._start()
        self.queue.put(job)
        return job.afut

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within ``timeout``) and stop the thread."""
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.queue.put(_STOP)
            thread.join(timeout)
        if self._checkpointer is not None:
            self._checkpointer.close()

    # ---------------------------------------------------------- the thread
    def _start(self) -> None:
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="agi-writer", daemon=True)
                    self.thread.start()

    def _run(self) -> None:
        pending: list[_Job] = []
        stop = False
        while not (stop and not pending):
            if not pending:
                job = self.queue.get()
                if job is _STOP:
                    break
                pending.append(job)
            while len(pending) < self.max_batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                pending.append(more)
            try:
                pending = self._write(pending)
            except Exception:  # noqa: BLE001 - never let the writer thread die
                log.exception("call writer: unexpected failure")
                pending = self._keep_or_drop(pending, "unexpected failure")
            self._flush()
            if pending:
                self.stats["retries"] += 1
                self._drop()                # maybe broken: reconnect for the next attempt
                time.sleep(0.2)             # the database is busy or down: try again shortly
        self._drop()

    def _settle(self, job: _Job, exc: Optional[BaseException]) -> None:
        if job.settled:
            return
        job.settled = True
        if job.loop is None:
            if exc is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(exc)
        else:
            self._to_settle.append((job.loop, job.afut, None, exc))

    def _flush(self) -> None:
        """Settle the asyncio futures of this batch: one wake-up per event loop."""
        pending, self._to_settle = self._to_settle, []
        settle_batch(pending)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                try:
                    conn.invalidate()
                except Exception:  # noqa: BLE001
                    pass

    def _write(self, batch: list[_Job]) -> list[_Job]:
        """Commit ``batch``; returns the jobs to try again (the database was busy or down)."""
        try:
            self._commit(batch)
            return []
        except Exception as e:  # noqa: BLE001 - sorted out below
            if _transient(e):
                return self._keep_or_drop(batch, _first_line(e))
            if len(batch) == 1:         # this row itself is bad
                self._fail(batch[0], e)
                return []
        retry = []
        for j in batch:                 # find the bad row(s) of the batch
            try:
                self._commit([j])
            except Exception as e1:  # noqa: BLE001
                if _transient(e1):
                    retry.append(j)
                else:
                    self._fail(j, e1)
        return self._keep_or_drop(retry, "database busy") if retry else []

    def _keep_or_drop(self, jobs: list[_Job], why: str) -> list[_Job]:
        now = time.monotonic()
        keep = []
        for j in jobs:
            if now < j.give_up_at:
                keep.append(j)
            else:
                self._fail(j, RuntimeError(f"gave up after {self.retry_seconds:.0f} s: {why}"))
        return keep

    def _fail(self, job: _Job, e: Exception) -> None:
        self.stats["failed"] += 1
        log.error("call %s: could not write its row (%s: %s); the AMI listener still records the "
                  "call, without the attribution", job.values.get("linkedid"), type(e).__name__,
                  str(e).splitlines()[0] if str(e) else "")
        self._settle(job, e)

    def _commit(self, jobs: list[_Job]) -> None:
        """Write ``jobs`` in one transaction (PostgreSQL: one statement per shape)."""
        self._transaction(jobs)
        self.stats["batches"] += 1
        self.stats["rows"] += len(jobs)
        for j in jobs:
            self._settle(j, None)

    def _transaction(self, jobs: list[_Job]) -> None:
        groups: dict[tuple, list[dict]] = {}
        for j in jobs:
            groups.setdefault((tuple(sorted(j.values)), j.overwrite), []).append(j.values)
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            try:        # kept open between batches: no pool checkout, no pre-ping round trip
                conn = self._conn = self.engine.connect()
                if conn.dialect.name == "postgresql":
                    # the commit returns before the WAL reaches the disk: a crash of the
                    # database server may lose the last fraction of a second of these rows
                    # (never corrupts anything; the AMI listener still records the calls)
                    conn.exec_driver_sql(f"SET lock_timeout = {self.busy_ms}")
                    conn.exec_driver_sql("SET synchronous_commit = off")
                    conn.commit()
                    conn.execution_options(isolation_level="AUTOCOMMIT")    # no COMMIT round trip
                else:
                    # SQLite: a commit that crosses the WAL's auto-checkpoint size copies the
                    # WAL into the database and syncs it (~10 ms) while the whole batch
                    # waits: the p99. Our checkpointer thread does that beside the commits.
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                    self._checkpointer = self._checkpointer or Checkpointer(self.engine, self.checkpoint_interval)
            except Exception as e:  # noqa: BLE001 - not this row's fault: the database is away
                self._conn = None
                raise Unavailable(_first_line(e)) from e
        dialect = conn.dialect.name
        try:
            for (keys, overwrite), rows in groups.items():
                conn.execute(hookdb._upsert_stmt(dialect, keys, overwrite), rows)
            conn.commit()
            if self._checkpointer is not None:
                self._checkpointer.wrote()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - a broken connection: open a new one next time
                self._drop()
            raise


class Checkpointer:
    """SQLite: copies the WAL back into the database (``PRAGMA wal_checkpoint(PASSIVE)``) in
    its own thread and connection, at most every ``interval`` seconds and only after writes,
    so that no commit of the writer pays for it. A passive checkpoint never blocks readers or
    writers; the other processes (AMI listener, web UI) keep SQLite's automatic checkpoints."""

    def __init__(self, engine: Engine, interval: float = 1.0):
        self.engine, self.interval = engine, interval
        self.dirty = threading.Event()
        self.stop = threading.Event()
        self.stats = {"checkpoints": 0, "failed": 0}
        self.thread = threading.Thread(target=self._run, name="agi-checkpoint", daemon=True)
        self.thread.start()

    def wrote(self) -> None:
        self.dirty.set()

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.dirty.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        conn = None
        while True:
            self.dirty.wait()
            if self.stop.wait(self.interval):   # gather a second of commits per checkpoint
                break
            self.dirty.clear()
            try:
                if conn is None:
                    conn = self.engine.raw_connection()
                conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.stats["checkpoints"] += 1
            except Exception as e:  # noqa: BLE001 - busy or broken: the next round tries again
                self.stats["failed"] += 1
                log.debug("WAL checkpoint failed: %s", e)
                if conn is not None:
                    try:
                        conn.invalidate()
                    except Exception:  # noqa: BLE001
                        pass
                    conn = None
        if conn is not None:
            conn.close()


class Unavailable(Exception):
    """The database could not be reached at all."""


def _transient(e: Exception) -> bool:
    """Locked, busy, timed out, connection trouble: worth another try (a bad row is not)."""
    if isinstance(e, Unavailable):
        return True
    if not isinstance(e, DBAPIError):
        return False
    if e.connection_invalidated or isinstance(e, OperationalError):
        return True
    code = getattr(e.orig, "sqlstate", None) or ""
    return code.startswith(("40", "55P03", "57014", "08"))    # serialization, lock, cancel, connection


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e)
    return text.splitlines()[0] if text else type(e).__name__

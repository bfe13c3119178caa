"""The FastAGI hooks' single write path: one writer thread, group commit of the call rows.

Every ``route`` answer upserts its call row (:mod:`calltracking.hooks.call_row`). Done
one transaction per call, the commits and the session set-up cost more than the rest of
the hook; here the calls that arrive together share one transaction (``executemany`` of
the same upsert), which keeps the FastAGI server fast under a burst. The other hooks'
writes (``promo``'s upsert, ``tag``'s transaction: :meth:`CallWriter.submit_work`)
go through the same thread, in the order they were queued.

With a spool (:mod:`calltracking.hooks.spool`), each call row is first a line of this
process's spool file, written in the same pass of the event loop: the hook answers
without waiting for the commit (``[agi] write_wait_ms``, 0 by default), the writer marks the
rows done once committed, and rows that are not done are replayed by the next server to
start. A spooled row is retried until it is written, however long the database stays away.

A hook waits for its commit at most ``[agi] write_wait_ms`` (without a spool at least
:data:`calltracking.hooks.spool.NO_SPOOL_WAIT_MS`). When the database is slow to write
(SQLite locked by a long transaction, a disk stall) the channel goes on anyway and the
write is done in the background as soon as the database allows: **a locked database is
retried until the write is done, never given up**; a database that cannot be reached at
all is given up after ``retry_seconds`` (logged as an error), except for spooled rows
(kept until written, or replayed at the next start). A failing batch is retried row by
row, so one bad row fails alone. How a batch is committed on each database:
:mod:`calltracking.hooks.batch_commit`.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Optional

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from calltracking import db
from calltracking.attribution.rawsql import discard
from calltracking.hooks import batch_commit
from calltracking.hooks.checkpoint import Checkpointer
from calltracking.hooks.spool import RETRY_SECONDS, Spool
from calltracking.hooks.write_job import (RELEASE_AFTER, ROW_WAIT, NotYetWritten, Unavailable,
                                          WriteJob, first_line, transient)
from calltracking.futures import settle_batch

log = logging.getLogger("calltracking.hooks")

_STOP = object()


class CallWriter:
    """The writer thread (started on first use); :meth:`close` drains and stops it."""

    def __init__(self, engine: Engine, max_batch: int = 200, retry_seconds: float = 60.0,
                 busy_ms: int = 2000, checkpoint_interval: float = 1.0,
                 spool: Optional[Spool] = None):
        self.engine = engine
        self.spool = spool          # this process's own; None: rows are not spooled
        self.row_wait = ROW_WAIT        # seconds a work waits for a call row not yet written
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self.busy_ms = busy_ms          # how long one attempt may wait for a lock
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: Optional[threading.Thread] = None
        self.lock = threading.Lock()
        self.stats = {"batches": 0, "rows": 0, "works": 0, "failed": 0, "late": 0, "retries": 0}
        # SQLite: every transaction of the thread begins IMMEDIATE and waits for the lock at
        # most busy_ms; a locked attempt is retried (see _run)
        self._engine = db.writer(engine, wait=busy_ms / 1000.0)
        self._sessions = db.make_sessionmaker(self._engine)      # for submit_work's jobs
        self._conn = None               # the writer thread's own connection
        self._stuck_since: Optional[float] = None     # first failed attempt of the pending writes
        self._abandoned = threading.Event()           # set by close() when its timeout ran out
        #: the last attempt failed for another reason than a lock (the database is down):
        #: what is pending may yet be given up (``retry_seconds``)
        self.unreachable = False
        self._warned_at = 0.0
        self._checkpointer: Optional[Checkpointer] = None      # SQLite
        self.checkpoint_interval = checkpoint_interval  # SQLite: seconds between checkpoints
        self._to_settle: list = []      # a thread's jobs of this batch: (future, result, exception)
        self._finished: list[WriteJob] = []     # an event loop's jobs of this batch
        self._done: dict = {}           # spool -> sequence numbers of its rows settled this batch
        self._no_rotation_until = 0.0     # monotonic time: a new spool file could not be made
        # spool files other than self.spool still in use: stopped servers' being replayed, and
        # this process's own rotated out (:meth:`Spool.rotate`); closed with the writer
        self._older: list[Spool] = []
        self._outbox: dict = {}         # event loop -> its jobs of this pass, not yet spooled
        self._ready: dict = {}          # event loop -> its jobs spooled, not yet given to the thread
        self._release_timer: dict = {}  # event loop -> the timer that releases them at the latest

    # ----------------------------------------------------------------- API
    def write(self, values: dict, overwrite: tuple, wait: float = 5.0,
              unspooled_wait: Optional[float] = None) -> bool:
        """From a thread: upsert one call row. True once committed; False when still pending
        after ``wait`` seconds (``unspooled_wait`` when given and the row could not be
        spooled): it is then written in the background. Raises when the write failed for
        good within the wait."""
        job = WriteJob(values, overwrite, self.retry_seconds)
        self._start()
        self._spool([job])
        if not job.spooled and unspooled_wait is not None:
            wait = unspooled_wait
        self.queue.put(job)
        try:
            job.future.result(wait)
        except TimeoutError:
            self.stats["late"] += 1
            return False
        return True

    def submit(self, values: dict, overwrite: tuple, loop) -> WriteJob:
        """From an event loop: queue the upsert (its commit: :meth:`WriteJob.wait_on`). The
        rows of one pass of the loop go to the spool in one write (:meth:`hand_over`); the
        thread gets them when the loop lets it (:meth:`release`), in one ``put``."""
        job = WriteJob(values, overwrite, self.retry_seconds, loop)
        self._start()
        box = self._outbox.get(loop)
        if box is None:
            box = self._outbox[loop] = []
            loop.call_soon(self.hand_over, loop)
        box.append(job)
        return job

    def hand_over(self, loop) -> None:
        """On ``loop``: what it submitted during this pass, to the spool in one write; the
        thread gets those rows at the next :meth:`release`, at the latest
        :data:`RELEASE_AFTER` seconds later. Called again before a channel goes on: then a
        no-op."""
        jobs = self._outbox.pop(loop, None)
        if not jobs:
            return
        self._spool(jobs)
        ready = self._ready.get(loop)
        if ready is None:
            self._ready[loop] = jobs
            self._release_timer[loop] = loop.call_later(RELEASE_AFTER, self.release, loop)
        else:
            ready.extend(jobs)

    def release(self, loop) -> None:
        """On ``loop``: the rows it handed over, to the writer thread in one ``put``. The FastAGI
        server calls it once a connection closes with no other call open, so that the thread's
        turn (its share of the interpreter lock) comes after the channel went on, not during a
        call's round trip (SQLite, 200 calls/s, alternating with the build before it: p50
        0.54-0.60 ms instead of 0.73-0.83, p99 0.87-1.39 ms instead of 1.06-2.09)."""
        jobs = self._ready.pop(loop, None)
        timer = self._release_timer.pop(loop, None)
        if timer is not None:
            timer.cancel()
        if jobs:
            self.queue.put(jobs)

    def _spool(self, jobs: list[WriteJob]) -> None:
        """Their lines in the spool, in one write (left unspooled when it fails)."""
        spool = self.spool
        if spool is None:
            return
        seqs = spool.append((j.values, j.overwrite) for j in jobs)
        if seqs is None:
            return
        for j, seq in zip(jobs, seqs):
            j.spool, j.seq = spool, seq
            j.give_up_at = float("inf")      # on disk: kept until written, never given up
        if spool.full():
            self._rotate(spool)

    def _rotate(self, spool: Spool) -> None:
        """This process's spool file is large: the next rows go to a new one (the old one is
        deleted once its rows are done). A hook's thread and the event loop may both get here."""
        with self.lock:
            if self.spool is not spool or time.monotonic() < self._no_rotation_until:
                return
            try:
                self.spool = spool.rotate()
            except OSError as e:
                self._no_rotation_until = time.monotonic() + RETRY_SECONDS
                log.warning("call spool %s: cannot start a new file (%s); going on with this one",
                            spool.path, e.strerror or e)
                return
            self._older = [s for s in self._older if s.fd >= 0] + [spool]

    def replay(self, spool: Spool, rows: list[tuple[int, dict, tuple]]) -> None:
        """Queue the rows of an adopted spool file (:meth:`Spool.adopt`), in their order,
        before anything queued later; each is marked done in that file once written."""
        self._older.append(spool)
        jobs = []
        for seq, values, overwrite in rows:
            job = WriteJob(values, overwrite, self.retry_seconds)
            job.spool, job.seq, job.give_up_at = spool, seq, float("inf")
            jobs.append(job)
        if jobs:
            self._start()
            self.queue.put(jobs)

    def submit_work(self, work: Callable[[Session], object], what: str) -> Future:
        """From any thread (an event loop too: it does not block): queue ``work(session)``, run
        in its own write transaction by the writer thread after what is queued before it;
        returns the future of its commit (its result: ``work``'s). A locked database is retried
        until it is done; an exception of ``work`` that is not about the database (a
        ``LookupError``, say) fails it for good. ``what`` names it in the log."""
        job = WriteJob(None, (), self.retry_seconds, work=work, what=what)
        self._start()
        try:        # on an event loop: its rows submitted before go first
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self.hand_over(loop)
            self.release(loop)
        self.queue.put(job)
        return job.future

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within ``timeout``) and stop the thread; close the spools
        (what is not written stays in them for the next start)."""
        try:
            self._close(timeout)
        finally:
            for spool in [self.spool] + self._older:
                if spool is not None:
                    spool.close()

    def _close(self, timeout: float) -> None:
        # what a loop had not given to the thread yet (its server is stopping: no new rows;
        # a release timer may still pop its own), the spooled rows first
        for loop in list(self._ready):
            jobs = self._ready.pop(loop, None)
            if jobs:
                self.queue.put(jobs)
        for loop in list(self._outbox):
            jobs = self._outbox.pop(loop, None)
            if jobs:
                self._spool(jobs)
                self.queue.put(jobs)
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.queue.put(_STOP)
            thread.join(timeout)
            if thread.is_alive():
                self._abandoned.set()        # the thread gives up its pending writes and ends
                log.error("call writer: stopped with writes not yet committed (the database stayed "
                          "locked or unreachable for %.0f s)", timeout)
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
        pending: list[WriteJob] = []
        stop = False
        while not (stop and not pending):
            if not pending:
                job = self.queue.get()
                if job is _STOP:
                    break
                pending.extend(job) if isinstance(job, list) else pending.append(job)
            while len(pending) < self.max_batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                pending.extend(more) if isinstance(more, list) else pending.append(more)
            try:
                pending = self._write(pending)
            except Exception:  # noqa: BLE001 - never let the writer thread die
                log.exception("call writer: unexpected failure")
                pending = self._keep_or_drop(pending, "unexpected failure", locked=False)
            self._flush()
            if pending and self._abandoned.is_set():
                break                        # closed and past its timeout: nobody waits any more
            if pending:
                self.stats["retries"] += 1
                self._waiting(len(pending))
                self._drop()                # maybe broken: reconnect for the next attempt
                time.sleep(0.2)             # the database is busy or down: try again shortly
            else:
                self._stuck_since = None
                self.unreachable = False
        self._drop()

    def _waiting(self, n: int) -> None:
        """A WARNING every 10 s while writes wait for the database (they are not lost)."""
        now = time.monotonic()
        if self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since >= 1.0 and now - self._warned_at >= 10.0:
            self._warned_at = now
            log.warning("call writer: %d write(s) waiting for the database for %.0f s; retrying",
                        n, now - self._stuck_since)

    def _settle(self, job: WriteJob, exc: Optional[BaseException], result=None) -> None:
        if job.settled:
            return
        job.settled = True
        if job.spool is not None:
            self._done.setdefault(job.spool, []).append(job.seq)
        if job.loop is None:
            self._to_settle.append((job.future, result, exc))
        else:
            job.error = exc
            self._finished.append(job)

    def _flush(self) -> None:
        """Mark this batch's rows done in their spools; then settle its jobs: a thread's
        future, an event loop's job marked finished and its loop woken (once per batch) only
        when a hook waits for it (:meth:`WriteJob.wait_on`)."""
        done, self._done = self._done, {}
        for spool, seqs in done.items():
            spool.done(seqs)
        settled, self._to_settle = self._to_settle, []
        for future, result, exc in settled:
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)
        finished, self._finished = self._finished, []
        for job in finished:
            job.finished = True             # before looking for a waiter: see wait_on
        settle_batch((j.loop, j.waiter, None, None) for j in finished if j.waiter is not None)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            discard(conn)           # maybe broken: a new connection for the next attempt

    def _write(self, batch: list[WriteJob]) -> list[WriteJob]:
        """Commit ``batch`` in its order: runs of call rows together, each work alone. Returns
        the jobs to try again (the database was busy or down): from the first run that could
        not be written, so that nothing overtakes a write queued before it."""
        i = 0
        while i < len(batch):
            if batch[i].work is not None:
                run, i = batch[i:i + 1], i + 1
                left = self._write_work(run[0])
            else:
                j = i
                while j < len(batch) and batch[j].work is None:
                    j += 1
                run, i = batch[i:j], j
                left = self._write_rows(run)
            if left is not None:
                jobs, why, locked = left
                return self._keep_or_drop(jobs, why, locked) + batch[i:]
        return []

    def _write_rows(self, batch: list[WriteJob]):
        """None when every row is settled, else ``(jobs to retry, why, locked)``."""
        try:
            self._commit(batch)
            return None
        except Exception as e:  # noqa: BLE001 - sorted out below
            if transient(e):
                return batch, first_line(e), db.is_locked(e)
            if len(batch) == 1:         # this row itself is bad
                self._fail(batch[0], e)
                return None
        retry, locked = [], True
        for j in batch:                 # find the bad row(s) of the batch
            try:
                self._commit([j])
            except Exception as e1:  # noqa: BLE001
                if transient(e1):
                    retry.append(j)
                    locked = locked and db.is_locked(e1)
                else:
                    self._fail(j, e1)
        return (retry, "database busy", locked) if retry else None

    def _write_work(self, job: WriteJob):
        """``job.work`` in its own write transaction (IMMEDIATE on SQLite)."""
        try:
            with db.session_scope(self._sessions) as s:
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text(f"SET LOCAL lock_timeout = {int(self.busy_ms)}"))
                result = job.work(s)
        except NotYetWritten as e:
            if time.monotonic() - job.queued_at < self.row_wait:
                return [job], str(e), True      # kept (as behind a lock) and tried again
            self._fail(job, e)
            return None
        except Exception as e:  # noqa: BLE001 - sorted out below
            if transient(e):
                return [job], first_line(e), db.is_locked(e)
            self._fail(job, e)
            return None
        self.stats["works"] += 1
        self._settle(job, None, result)
        return None

    def _keep_or_drop(self, jobs: list[WriteJob], why: str, locked: bool) -> list[WriteJob]:
        """The jobs to try again. A locked database only delays a write: kept until done. One
        that cannot be reached: kept for ``retry_seconds``, then failed (logged)."""
        self.unreachable = not locked
        if locked:
            return jobs
        now = time.monotonic()
        keep = []
        for j in jobs:
            if now < j.give_up_at:
                keep.append(j)
            else:
                self._fail(j, RuntimeError(f"gave up after {self.retry_seconds:.0f} s: {why}"))
        return keep

    def _fail(self, job: WriteJob, e: Exception) -> None:
        self.stats["failed"] += 1
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if job.work is None:
            log.error("call %s: could not write its row (%s); the AMI listener still records the "
                      "call, without the attribution", job.values.get("linkedid"), why)
        else:
            log.error("%s: not written (%s)", job.what, why)
        self._settle(job, e)

    def _commit(self, jobs: list[WriteJob]) -> None:
        """Write ``jobs`` in one transaction (PostgreSQL: one statement per shape)."""
        self._transaction(jobs)
        self.stats["batches"] += 1
        self.stats["rows"] += len(jobs)
        for j in jobs:
            self._settle(j, None)

    def _transaction(self, jobs: list[WriteJob]) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            try:
                conn = self._conn = batch_commit.connect(self._engine, self.busy_ms)
            except Exception as e:  # noqa: BLE001 - not this row's fault: the database is away
                self._conn = None
                if db.is_locked(e):
                    raise
                raise Unavailable(first_line(e)) from e
            if conn.dialect.name == "sqlite" and self._checkpointer is None:
                self._checkpointer = Checkpointer(self.engine, self.checkpoint_interval)
        batch_commit.write_rows(conn, [(j.values, j.overwrite) for j in jobs])
        if self._checkpointer is not None:
            self._checkpointer.wrote()

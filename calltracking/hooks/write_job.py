"""What the FastAGI writer thread (:mod:`calltracking.hooks.writer`) is given, and how it tells
a failure worth another try (a locked, busy or unreachable database) from a bad row."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from typing import Callable, Optional

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from calltracking.hooks.spool import Spool


class WriteJob:
    """A call row to upsert (``values``, ``overwrite``), or a ``work(session)`` transaction."""

    __slots__ = ("values", "overwrite", "work", "what", "future", "give_up_at", "loop", "waiter",
                 "error", "settled", "finished", "spool", "seq", "queued_at")

    def __init__(self, values: Optional[dict], overwrite: tuple, retry_seconds: float, loop=None,
                 work: Optional[Callable[[Session], object]] = None, what: str = ""):
        self.values, self.overwrite = values, overwrite
        self.work = work
        self.what = what or f"call {(values or {}).get('linkedid')}: its row"
        self.queued_at = time.monotonic()
        self.give_up_at = self.queued_at + retry_seconds
        self.loop = loop                # asyncio caller: see wait_on
        # a thread's job gets a concurrent future (0.7 µs with its condition and lock); an event
        # loop's job no future at all unless a hook waits for its commit (wait_on)
        self.future: Optional[Future] = Future() if loop is None else None
        self.waiter: Optional[asyncio.Future] = None
        self.error: Optional[BaseException] = None     # why it failed for good (once finished)
        self.settled = False            # the writer thread is done with it
        self.finished = False           # ... and its spool line marked: what a loop looks at
        self.spool: Optional[Spool] = None      # the file its line is in (None: not spooled)
        self.seq = 0

    @property
    def spooled(self) -> bool:
        return self.spool is not None

    def wait_on(self) -> Optional["asyncio.Future"]:
        """On the job's event loop: a future the writer thread completes (with None) once the
        job is :attr:`finished` (committed, or failed for good: :attr:`error`), or None when it
        already is. Only a hook that waits for its commit asks: the writer wakes a loop for
        nobody else (with the spool and ``write_wait_ms = 0``, nobody). The writer marks the job
        finished before it looks for the waiter, and the loop sets the waiter before it looks
        at ``finished``: one of them always sees the other (both may: completing it twice is
        harmless)."""
        if self.finished:
            return None
        self.waiter = self.loop.create_future()
        if self.finished:           # finished between the two looks: the writer may have missed it
            return None
        return self.waiter


class NotYetWritten(LookupError):
    """A work's call row is not in the database yet: another server process may have it in its
    spool, committed within milliseconds. The writer tries again for :data:`ROW_WAIT`
    seconds, then fails the work as the ``LookupError`` it is."""


#: Seconds a work waits for a call row another process has not committed yet.
ROW_WAIT = 2.0


#: Seconds at most between a loop's row reaching the spool and the writer thread getting it
#: (:meth:`CallWriter.release`; normally the row's connection closing releases it first).
RELEASE_AFTER = 0.02


class Unavailable(Exception):
    """The database could not be reached at all."""


def transient(e: Exception) -> bool:
    """Locked, busy, timed out, connection trouble: worth another try (a bad row is not)."""
    if isinstance(e, Unavailable):
        return True
    if not isinstance(e, DBAPIError):
        return False
    if e.connection_invalidated or isinstance(e, OperationalError):
        return True
    code = getattr(e.orig, "sqlstate", None) or ""
    return code.startswith(("40", "55P03", "57014", "08"))    # serialization, lock, cancel, connection


def first_line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e)
    return text.splitlines()[0] if text else type(e).__name__

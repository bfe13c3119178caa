"""What the FastAGI writer thread (:mod:`calltracking.hooks.writer`) is given, and how it tells
a failure worth another try (a locked, busy or unreachable database) from a bad row."""
from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Callable, Optional

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from calltracking.hooks.spool import Spool


class WriteJob:
    """A call row to upsert (``values``, ``overwrite``), or a ``work(session)`` transaction."""

    __slots__ = ("values", "overwrite", "work", "what", "future", "give_up_at", "afut", "loop",
                 "settled", "spool", "seq", "queued_at")

    def __init__(self, values: Optional[dict], overwrite: tuple, retry_seconds: float, loop=None,
                 work: Optional[Callable[[Session], object]] = None, what: str = ""):
        self.values, self.overwrite = values, overwrite
        self.work = work
        self.what = what or f"call {(values or {}).get('linkedid')}: its row"
        self.queued_at = time.monotonic()
        self.give_up_at = self.queued_at + retry_seconds
        self.loop = loop                # asyncio caller: settled on its loop, in bulk
        # a thread's job gets a concurrent future (0.7 µs with its condition and lock); an event
        # loop's only its asyncio future
        self.afut = loop.create_future() if loop is not None else None
        self.future: Optional[Future] = Future() if loop is None else None
        self.settled = False
        self.spool: Optional[Spool] = None      # the file its line is in (None: not spooled)
        self.seq = 0

    @property
    def spooled(self) -> bool:
        return self.spool is not None


class NotYetWritten(LookupError):
    """A work's call row is not in the database yet: another server process may have it in its
    spool, committed within milliseconds. The writer tries again for :data:`ROW_WAIT`
    seconds, then fails the work as the ``LookupError`` it is."""


#: Seconds a work waits for a call row another process has not committed yet.
ROW_WAIT = 2.0


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

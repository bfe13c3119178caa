"""The writer: runs the core's :class:`~calltracking.callstore.ingest.Processor` off the event loop.

The socket reader only parses frames and appends them to a deque (the events of one read as
one item). The writer task takes everything queued so far (at most :data:`MAX_BATCH` events)
as one batch and runs
:meth:`Processor.process` in a worker thread (interpretation + one database transaction), so
the event loop keeps reading the socket while the database works. When the write fails, the
batch is retried with back-off (0.5 s doubling to 10 s); nothing queued is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from calltracking import metrics
from calltracking.callstore.ingest import Processor

log = logging.getLogger("calltracking.ami")
MAX_BATCH = 20_000


def _observe(batch: list, proc: Processor, backlog: int, events: int) -> None:
    """Prometheus figures for a committed batch: events (``events``: read, skipped unread
    included), receive-to-commit lag, queue depth."""
    if events:
        metrics.AMI_EVENTS.inc(events)
        last = next((item[1] for item in reversed(batch) if item[0] in ("ev", "evs")), None)
        if last is not None:
            metrics.AMI_LAG.set(max(0.0, time.time() - last))
    unknown = proc.it.stats.get("unknown", 0)
    if unknown > proc.unknown_reported:
        metrics.AMI_UNKNOWN_EVENTS.inc(unknown - proc.unknown_reported)
        proc.unknown_reported = unknown
    metrics.AMI_QUEUE.set(backlog)


class Writer:
    """The asyncio side: a deque filled by the reader, drained by batches in a thread."""

    def __init__(self, proc: Processor):
        self.proc = proc
        self.queue: deque = deque()
        self.wake = asyncio.Event()
        self.closing = False
        self.max_backlog = 0
        self.queued = 0             # events (and other items) in the queue
        self.inflight = 0
        self.failures = 0           # writes that failed and were retried

    @property
    def idle(self) -> bool:
        return not self.queue and not self.inflight

    def put(self, item) -> None:
        self.queue.append(item)
        self.queued += len(item[2]) if item[0] == "evs" else 1
        if not self.wake.is_set():
            self.wake.set()

    async def run(self) -> None:
        q, backoff = self.queue, 0.5
        while True:
            if not q:
                if self.closing:
                    break
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            self.max_backlog = max(self.max_backlog, self.queued)
            batch, size = [], 0
            while q and size < MAX_BATCH:
                item = q.popleft()
                batch.append(item)
                size += len(item[2]) if item[0] == "evs" else 1
            self.queued -= size
            self.inflight = len(batch) or 1
            try:
                if batch:
                    before = self.proc.counts["events"]
                    await asyncio.to_thread(self.proc.process, batch)
                    _observe(batch, self.proc, self.queued, self.proc.counts["events"] - before)
                else:
                    await asyncio.to_thread(self.proc.flush)
                backoff = 0.5
                self.inflight = 0
            except Exception as e:
                self.failures += 1
                log.error("writing AMI state failed (%s: %s); retrying in %.1fs, nothing is dropped",
                          type(e).__name__, str(e).splitlines()[0][:200], backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                if self.closing and backoff >= 10.0 and not q:
                    log.error("giving up at shutdown: %d events not written", len(self.proc.pending_events))
                    break
        try:
            await asyncio.to_thread(self.proc.flush, True)
        except Exception:
            log.exception("final write of the AMI listener state failed")

"""The writer: interprets queued events and persists them, off the event loop.

The socket reader only parses frames and appends them to a deque. The writer
task takes everything queued so far as one batch and runs
:meth:`Processor.process` in a worker thread (interpretation + one database
transaction), so the event loop keeps reading the socket while the database
works. When the database fails, the interpreted state is kept and the write
is retried with back-off; nothing queued is dropped.

The store's transactions begin IMMEDIATE on SQLite (:func:`calltracking.db.write_sessionmaker`):
a batch reads (existing calls, operators) and then writes, and a deferred transaction doing
that fails at once with "database is locked" whenever the FastAGI server, the scheduler or
the web UI committed in between; an immediate one waits for its turn.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter, deque
from typing import Callable, Optional

from calltracking import metrics
from calltracking.calls_store import CallStore, event_row
from calltracking.db import write_sessionmaker
from calltracking.interpret import Interpreter

log = logging.getLogger("calltracking.ami")
MAX_BATCH = 20_000
STATE_EVERY = 5.0          # seconds between listener-state writes when idle
MAINTAIN_EVERY = 60.0
KEEP_EVENTS_DAYS = 35      # stored events of finished calls (for `ami rebuild`)


class Processor:
    """Interpreter + store. Not thread-safe: one writer thread at a time."""

    def __init__(self, store: CallStore):
        self.store = store
        store.factory = write_sessionmaker(store.factory)     # see the module's docstring
        self.it = Interpreter()
        self.pending_events: list[dict] = []
        self.pending_calls: dict = {}
        self.pending_members: list = []
        self.pending_done: set = set()
        self.state: dict = {}
        self.privileges: dict = {}
        self.counts: Counter = Counter()
        self.malformed = 0
        self.last_event_at: Optional[float] = None
        self.last_state_write = 0.0
        self.committed = 0              # batches committed
        self.unknown_reported = 0       # unknown events already counted in the metrics
        self.last_maintenance = time.time()
        self.last_purge = 0.0
        self.on_commit: Optional[Callable[[list], None]] = None   # benchmark hook

    # ------------------------------------------------------------------ restore
    def restore(self) -> int:
        """Replay the stored events of calls that were live when the listener stopped."""
        events = self.store.load_live_events()
        for ev, recv in events:
            self.it.feed(ev, recv)
        self.it.take_dirty()
        self.it.take_member_changes()
        self.last_event_at = self.store.last_event_at()
        return len(events)

    # ------------------------------------------------------------------ batches
    def process(self, items: list) -> None:
        it = self.it
        fresh = {ev.get("Linkedid") for kind, _, ev in (i for i in items if i[0] == "ev")
                 if ev.get("Event") == "Newchannel" and ev.get("Linkedid") not in it.calls}
        fresh.discard(None)
        if fresh:
            try:
                for lid in self.store.finished_among(fresh):
                    it.finished[lid] = None
            except Exception:  # pragma: no cover - the write below reports database trouble
                log.warning("cannot check finished calls; continuing", exc_info=True)
        rows = self.pending_events
        pbx = self.store.pbx_id
        callbacks = []
        for item in items:
            kind = item[0]
            if kind == "ev":
                _, recv, ev = item
                if "_skipped" in ev:            # the reader's count of events it dropped unread
                    self.counts["events"] += ev["_skipped"]
                    for priv in ev["_privileges"]:
                        self.privileges[priv] = recv
                    continue
                self._count(ev, recv)
                lid = it.feed(ev, recv)
                if lid:
                    rows.append(event_row(pbx, lid, ev, _ts(ev, recv), recv))
            elif kind == "reconcile":
                _, snapshot, lost_at, now, done_cb = item
                # Asterisk's clock: the last event time we saw is the last moment a call was known alive.
                lost_at = self.last_event_at or lost_at
                now = max(now if self.last_event_at is None else self.last_event_at, lost_at)
                for ev in it.reconcile(snapshot, lost_at, now):
                    lid = it.feed(ev, now)
                    if lid:
                        rows.append(event_row(pbx, lid, ev, _ts(ev, now), now))
                if done_cb is not None:
                    callbacks.append(done_cb)
            elif kind == "state":
                self.state.update(item[1])
            elif kind == "malformed":
                self.malformed = item[1]
        self._maintain()
        self._collect()
        self.flush()
        for cb in callbacks:
            cb()

    def _maintain(self) -> None:
        """Once a minute: forget calls that ended long ago; once a day: purge old stored events."""
        now = time.time()
        if now - self.last_maintenance < MAINTAIN_EVERY:
            return
        self.last_maintenance = now
        if self.last_event_at is not None:
            for lid in self.it.sweep(self.last_event_at):
                self.it.touch(lid)
        if now - self.last_purge > 86400:
            self.last_purge = now
            try:
                n = self.store.purge_events(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=KEEP_EVENTS_DAYS))
                if n:
                    log.info("purged %d stored AMI events older than %d days", n, KEEP_EVENTS_DAYS)
            except Exception:
                log.warning("purging old AMI events failed", exc_info=True)

    def _count(self, ev: dict, recv: float) -> None:
        c = self.counts
        c["events"] += 1
        raw = ev.get("Timestamp")
        if raw is None:
            c["without_timestamp"] += 1
            if "Linkedid" not in ev:
                return          # FullyBooted and the like: no Asterisk time to learn from
            ts = recv
        else:
            ts = _ts(ev, recv)
        priv = ev.get("Privilege")
        if priv is not None:
            self.privileges[priv] = recv
        if self.last_event_at is None or ts > self.last_event_at:
            self.last_event_at = ts

    @property
    def classes(self) -> dict:
        out: dict = {}
        for priv, at in self.privileges.items():
            cls = priv.split(",", 1)[0]
            out[cls] = max(out.get(cls, 0), int(at))
        return out

    def _collect(self) -> None:
        for call in self.it.take_dirty():
            self.pending_calls[call.linkedid] = call
            if call.done:
                self.pending_done.add(call.linkedid)
        self.pending_members += self.it.take_member_changes()

    def flush(self, force_state: bool = False) -> None:
        now = time.time()
        state = None
        if force_state or self.state or self.pending_calls or now - self.last_state_write > STATE_EVERY:
            state = dict(self.state, events=self.counts["events"],
                         unknown_events=self.it.stats["unknown"], malformed_frames=self.malformed,
                         without_timestamp=self.counts["without_timestamp"], classes=self.classes,
                         last_event_at=self.last_event_at,
                         stats=dict(self.it.stats, unknown_types=dict(self.it.unknown.most_common(20))))
        if not (self.pending_events or self.pending_calls or self.pending_members or state):
            return
        calls = list(self.pending_calls.values())
        self.store.persist(self.pending_events, calls, self.pending_done, self.pending_members, state)
        if self.on_commit is not None:
            self.on_commit(self.pending_events)
        self.pending_events, self.pending_calls, self.pending_members = [], {}, []
        self.pending_done = set()
        self.state = {}
        self.last_state_write = now
        self.committed += 1
        self.it.evict_done()


def _ts(ev: dict, recv: float) -> float:
    raw = ev.get("Timestamp")
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    return recv


def _observe(batch: list, proc: "Processor", backlog: int) -> None:
    """Prometheus figures for a committed batch: events, receive-to-commit lag, queue depth."""
    events = [item for item in batch if item[0] == "ev"]
    if events:
        metrics.AMI_EVENTS.inc(sum(ev.get("_skipped", 1) for _, _, ev in events))
        metrics.AMI_LAG.set(max(0.0, time.time() - events[-1][1]))
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
        self.inflight = 0

    @property
    def idle(self) -> bool:
        return not self.queue and not self.inflight

    def put(self, item) -> None:
        self.queue.append(item)
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
            n = min(len(q), MAX_BATCH)
            self.max_backlog = max(self.max_backlog, len(q))
            batch = [q.popleft() for _ in range(n)]
            self.inflight = len(batch) or 1
            try:
                if batch:
                    await asyncio.to_thread(self.proc.process, batch)
                    _observe(batch, self.proc, len(q))
                else:
                    await asyncio.to_thread(self.proc.flush)
                backoff = 0.5
                self.inflight = 0
            except Exception as e:
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

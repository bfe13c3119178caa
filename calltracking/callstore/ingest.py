"""Ingesting AMI events: the interpreter and the call store, one batch at a time.

:meth:`Processor.process` takes what the listener queued since the last batch (events,
a reconnect's snapshot, state reports), checks each event (:mod:`~calltracking.callstore.quarantine`),
interprets it and writes everything that changed in one transaction (:meth:`CallStore.persist`).
When the database fails, the interpreted state is kept and the write is retried by the caller
with back-off; nothing queued is dropped.

The store's transactions begin IMMEDIATE on SQLite (:func:`calltracking.db.write_sessionmaker`):
a batch reads (existing calls, operators) and then writes, and a deferred transaction doing
that fails at once with "database is locked" whenever the FastAGI server, the scheduler or
the web UI committed in between; an immediate one waits for its turn.

Last resort: when a write fails and the error is not the database's own (:func:`transient`:
connection, lock, disk, permissions, schema -- retried with back-off, nothing dropped), the
events since the last commit are written again from the committed state in halves, down to the
event(s) the database refuses, which are set aside (``write_failed``); the others are written.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Callable, Optional

from sqlalchemy import exc as sa_exc

from calltracking.callstore.events import event_row
from calltracking.callstore.quarantine import HANDLER_ERROR, WRITE_FAILED, Quarantine, refusal
from calltracking.callstore.store import CallStore
from calltracking.db import is_locked, write_sessionmaker
from calltracking.interpret import Interpreter
from calltracking.interpret.frames import TIMESTAMP, UNDECODABLE, StreamClock
from calltracking.interpret.state import QueueMember

log = logging.getLogger("calltracking.ami")
STATE_EVERY = 5.0          # seconds between listener-state writes when idle
MAINTAIN_EVERY = 60.0
KEEP_EVENTS_DAYS = 35      # stored events of finished calls (for `ami rebuild`)
#: Errors of the database itself, not of the values written: the write is retried as it is.
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.ProgrammingError,
             sa_exc.DisconnectionError, sa_exc.TimeoutError, OSError)
#: SQLSTATE classes of the PostgreSQL errors the values written cause: data exception,
#: integrity constraint, a trigger's RAISE, cardinality, triggered action/data change, WITH CHECK.
VALUE_ERRORS = ("22", "23", "P0", "21", "09", "27", "44")


def transient(e: BaseException) -> bool:
    """Whether a failed write is the database's trouble (down, locked, full, not migrated, no
    permission; on PostgreSQL every SQLSTATE class but :data:`VALUE_ERRORS`): retried with
    back-off. Any other error (a value refused: ``DataError``, ``IntegrityError``, a trigger; a
    value Python or the driver cannot convert; a bug reached by an event's values) starts the
    search for the event that causes it."""
    if getattr(e, "connection_invalidated", False):
        return True
    sqlstate = getattr(getattr(e, "orig", None), "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] not in VALUE_ERRORS
    return isinstance(e, TRANSIENT) or is_locked(e)


def _brief(e: BaseException) -> str:
    first = (str(e).splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:200]}"


class _Kept:
    """What the interpreter holds that its stored events do not give back (queue members and
    their state, counters), as of the last commit."""

    __slots__ = ("members", "stats", "unknown")

    def __init__(self, it: Interpreter):
        self.members = _copy_members(it.queues)
        self.stats, self.unknown = Counter(it.stats), Counter(it.unknown)

    def apply(self, it: Interpreter) -> None:
        it.queues = _copy_members(self.members)
        it.stats, it.unknown = Counter(self.stats), Counter(self.unknown)


def _copy_members(queues: dict) -> dict:
    return {q: {i: QueueMember(m.interface, m.name, m.status, m.paused) for i, m in members.items()}
            for q, members in queues.items()}


class Processor:
    """Interpreter + store: queued items in, committed batches out. Not thread-safe: one
    writer thread at a time. The store's sessions become IMMEDIATE ones (see the module)."""

    def __init__(self, store: CallStore):
        self.store = store
        store.factory = write_sessionmaker(store.factory)
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
        self.clock = StreamClock()
        self.fed: list[tuple[dict, float]] = []     # events interpreted since the last commit
        self.broken = False                         # interpreting one of them raised
        self.quarantine = Quarantine()
        self._kept = _Kept(self.it)

    @property
    def quarantined(self) -> Counter:
        """Reason -> events set aside or repaired."""
        return self.quarantine.counts

    # ------------------------------------------------------------------ restore
    def restore(self) -> int:
        """Replay the stored events of calls that were live when the listener stopped."""
        events = self.store.load_live_events()
        for ev, recv in events:
            self.it.feed(ev, recv)
        self.it.take_dirty()
        self.it.take_member_changes()
        self.it.rejected.clear()
        self._kept = _Kept(self.it)
        self.last_event_at = self.store.last_event_at()
        return len(events)

    # ------------------------------------------------------------------ batches
    def process(self, items: list) -> None:
        """Interpret and write one batch of queued items: ``("ev", received_at, frame)``,
        ``("evs", received_at, frames)`` (the events of one read, in order),
        ``("reconcile", snapshot, lost_at, now, done_callback)`` (a reconnect's view of Asterisk),
        ``("state", dict)`` (listener state to store) and ``("malformed", count)``."""
        it = self.it
        calls = it.calls
        fresh = set()
        for item in items:
            kind = item[0]
            if kind == "evs":
                for ev in item[2]:
                    if ev.get("Event") == "Newchannel" and ev.get("Linkedid") not in calls:
                        fresh.add(ev.get("Linkedid"))
            elif kind == "ev":
                ev = item[2]
                if ev.get("Event") == "Newchannel" and ev.get("Linkedid") not in calls:
                    fresh.add(ev.get("Linkedid"))
        fresh.discard(None)
        if fresh:
            try:
                for lid in self.store.finished_among(fresh):
                    it.finished[lid] = None
            except Exception:  # pragma: no cover - the write below reports database trouble
                log.warning("cannot check finished calls; continuing", exc_info=True)
        rows, fed = self.pending_events, self.fed
        pbx = self.store.pbx_id
        callbacks = []
        vet, feed, add_row, add_fed = self._vet, it.feed, rows.append, fed.append
        for item in items:
            kind = item[0]
            if kind == "evs" or kind == "ev":
                recv = item[1]
                for ev in (item[2] if kind == "evs" else (item[2],)):
                    if "_skipped" in ev:            # the reader's count of events it dropped unread
                        self.counts["events"] += ev["_skipped"]
                        for priv in ev["_privileges"]:
                            self.privileges[priv] = recv
                        continue
                    ts = vet(ev, recv)
                    if ts is None:
                        continue
                    add_fed((ev, recv))
                    try:
                        lid = feed(ev, recv)
                        if lid:
                            add_row(event_row(pbx, lid, ev, ts, recv))
                    except Exception:       # the search at the write finds the event again
                        self.broken = True
            elif kind == "reconcile":
                _, snapshot, lost_at, now, done_cb = item
                # Asterisk's clock: the last event time we saw is the last moment a call was known alive.
                lost_at = self.last_event_at or lost_at
                now = max(now if self.last_event_at is None else self.last_event_at, lost_at)
                try:
                    made = it.reconcile(self.quarantine.vet_snapshot(snapshot), lost_at, now)
                except Exception:
                    log.exception("reconciling with Asterisk's snapshot failed; the calls stay as they were")
                    made = []
                for ev in made:
                    ts = self.quarantine.vet_made(ev, now)
                    fed.append((ev, now))
                    try:
                        lid = it.feed(ev, now)
                        if lid:
                            rows.append(event_row(pbx, lid, ev, ts, now))
                    except Exception:
                        self.broken = True
                if done_cb is not None:
                    callbacks.append(done_cb)
            elif kind == "state":
                self.state.update(item[1])
            elif kind == "malformed":
                self.malformed = item[1]
        if it.rejected:
            for ev in it.rejected:
                self.quarantine.set_aside(HANDLER_ERROR, ev)
            it.rejected.clear()
        self._maintain()
        self._collect()
        self.flush()
        for cb in callbacks:
            cb()

    # ------------------------------------------------------------------ bad events
    def _vet(self, ev: dict, recv: float) -> Optional[float]:
        """Count an event, check it at the edge and date it; None when it is set aside."""
        c = self.counts
        c["events"] += 1
        reason = refusal(ev)
        if reason is not None:
            self.quarantine.set_aside(reason, ev)
            return None
        if "_undecodable" in ev:
            self.quarantine.set_aside(UNDECODABLE, ev, "bytes that are not UTF-8 kept as U+FFFD")
        raw = ev.get("Timestamp")
        if raw is None:
            c["without_timestamp"] += 1
            if "Linkedid" not in ev:
                return recv     # FullyBooted and the like: no Asterisk time to learn from
            ts = recv
        else:
            ts, own = self.clock.read(raw, recv)
            if not own:
                self.quarantine.set_aside(TIMESTAMP, ev, f"Timestamp replaced by the stream's clock, {ts:.6f}")
                ev["Timestamp"] = f"{ts:.6f}"
        priv = ev.get("Privilege")
        if priv is not None:
            self.privileges[priv] = recv
        if self.last_event_at is None or ts > self.last_event_at:
            self.last_event_at = ts
        return ts

    # ------------------------------------------------------------------ upkeep
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

    def _state_row(self, force: bool) -> Optional[dict]:
        if not (force or self.state or self.pending_calls or time.time() - self.last_state_write > STATE_EVERY):
            return None
        return dict(self.state, events=self.counts["events"],
                    unknown_events=self.it.stats["unknown"], malformed_frames=self.malformed,
                    without_timestamp=self.counts["without_timestamp"], classes=self.classes,
                    last_event_at=self.last_event_at,
                    stats=dict(self.it.stats, unknown_types=dict(self.it.unknown.most_common(20)),
                               quarantined=dict(self.quarantine.counts)))

    # ------------------------------------------------------------------ writing
    def flush(self, force_state: bool = False) -> None:
        """Write what is pending. Database trouble (:func:`transient`) is raised, everything kept
        for the next try; any other failure is searched (:meth:`_search`)."""
        try:
            if self.broken:
                raise RuntimeError("an event could not be interpreted")
            self._flush(force_state)
        except Exception as e:
            if transient(e):
                raise
            self._search(e)

    def _flush(self, force_state: bool) -> None:
        state = self._state_row(force_state)
        if not (self.pending_events or self.pending_calls or self.pending_members or state):
            return
        calls = list(self.pending_calls.values())
        self.store.persist(self.pending_events, calls, self.pending_done, self.pending_members, state)
        if self.on_commit is not None:
            self.on_commit(self.pending_events)
        self.pending_events, self.pending_calls, self.pending_members = [], {}, []
        self.pending_done = set()
        self.state = {}
        self.last_state_write = time.time()
        self.committed += 1
        self.it.evict_done()
        self.fed = []
        self._kept = _Kept(self.it)

    def _search(self, error: BaseException) -> None:
        """The last resort: the events since the last commit written again, from the committed
        state, in halves down to the ones the database refuses; those are set aside.

        First the database must take a write (the listener's state) and give back the committed
        state (the stored events of the live calls, replayed as at a restart; queue members and
        counters kept from the last commit): if it cannot, it is the database's trouble, raised
        with everything kept. A chunk that fails is written again halved from a state rebuilt the
        same way, so each refused event costs about 2 x log2(events) writes. Database trouble
        during the search leaves the events not written yet pending, as before it."""
        fed = self.fed
        log.warning("writing %d AMI event(s) failed (%s); looking for the event(s) the database refuses",
                    len(fed), _brief(error))
        self.store.persist([], [], state=self._state_row(True))    # raises on the database's own trouble
        self.state, self.last_state_write = {}, time.time()
        self.it = self._rebuilt()
        self._drop_pending()
        i, n, size = 0, len(fed), len(fed)
        while i < n:
            chunk = fed[i:i + size]
            try:
                self._write_chunk(chunk)
            except Exception as e:
                if transient(e):
                    self._refeed(fed[i + len(chunk):])
                    raise
                try:
                    self.it = self._rebuilt()
                except Exception:
                    self._refeed(fed[i + len(chunk):])     # all pending again, searched at the next write
                    raise
                self._drop_pending()
                if size > 1:
                    size = (size + 1) // 2
                    continue
                self.quarantine.set_aside(WRITE_FAILED, chunk[0][0], why=_brief(e))
                i += 1
                size = n - i
                continue
            i += len(chunk)
            size = n - i

    def _rebuilt(self) -> Interpreter:
        it = Interpreter()
        for ev, recv in self.store.load_live_events():
            it.feed(ev, recv)
        it.take_dirty()
        it.take_member_changes()
        it.rejected.clear()
        it.finished = self.it.finished
        self._kept.apply(it)
        return it

    def _drop_pending(self) -> None:
        self.pending_events, self.pending_calls, self.pending_members = [], {}, []
        self.pending_done, self.fed, self.broken = set(), [], False

    def _refeed(self, events: list) -> None:
        """Interpret ``events`` again into the pending write (they were interpreted and checked
        before: events a handler fails on were reported then)."""
        it, pbx = self.it, self.store.pbx_id
        for ev, recv in events:
            self.fed.append((ev, recv))
            try:
                lid = it.feed(ev, recv)
                if lid:
                    self.pending_events.append(event_row(pbx, lid, ev, _ts(ev, recv), recv))
            except Exception:
                self.broken = True
        it.rejected.clear()
        self._collect()

    def _write_chunk(self, chunk: list) -> None:
        self._refeed(chunk)
        if self.broken:
            raise RuntimeError("an event could not be interpreted")
        events = self.pending_events
        self.store.persist(events, list(self.pending_calls.values()), self.pending_done, self.pending_members)
        if self.on_commit is not None:
            self.on_commit(events)
        self._drop_pending()
        self.committed += 1
        self.it.evict_done()
        self._kept = _Kept(self.it)


def _ts(ev: dict, recv: float) -> float:
    raw = ev.get("Timestamp")
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    return recv

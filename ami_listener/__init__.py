"""The AMI listener: Asterisk's events -> call records (see README "## AMI listener").

:func:`run_ami` connects (panoramisk), logs in, keeps the connection alive
with pings, reconnects with back-off forever, and after every login
reconciles with what Asterisk still knows (``Ping``, ``QueueStatus``,
``CoreShowChannels``, the queue_log lines written meanwhile, the registered
operators: :mod:`calltracking.interpret.reconcile`). The socket reader
only parses and queues; :class:`~ami_listener.writer.Writer` hands the batches
to the core (:class:`calltracking.callstore.ingest.Processor`: interpretation
and persistence) in a worker thread. On ``stop`` the queue is drained and the
coroutine returns.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import math
import random
import time
from functools import partial
from typing import Optional

from sqlalchemy import select

from calltracking import metrics
from calltracking.callstore.ingest import Processor
from calltracking.callstore.store import CallStore
from calltracking.enums import CallStatus
from calltracking.interpret.frames import WINDOW
from calltracking.models import Call, Operator

from ami_listener.connection import AmiConnection, LoginError
from ami_listener.parse_process import ParseHelper
from ami_listener.queuelog import QueueLog
from ami_listener.writer import Writer

log = logging.getLogger("calltracking.ami")
#: Calls begun while the listener was away that one reconnect looks at, at most.
ORPHANS_MAX = 10_000
#: The FastAGI hook's clock is ours, the last event's is Asterisk's: a margin between them (s).
ORPHANS_MARGIN = 60.0
#: How far back a listener that never ran looks for them (s).
ORPHANS_AGE = 86400.0

__all__ = ["run_ami", "LoginError"]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def _skew(writer: Writer, skew: float) -> None:
    """The clock skew of a Ping answer, when its Timestamp was a sane time."""
    if math.isfinite(skew) and abs(skew) < WINDOW:
        writer.put(("state", {"clock_skew_ms": round(skew * 1000)}))


def _operators(sessionmaker) -> dict:
    """Active operators' interfaces -> names (who may be taken for a leg at a reconnect)."""
    with sessionmaker() as s:
        return dict(s.execute(select(Operator.interface, Operator.name).where(Operator.active.is_(True))).all())


def _orphans(sessionmaker, pbx_id: str, since: float) -> list[dict]:
    """Calls the FastAGI hook recorded since ``since`` that are still ``in_progress``: those the
    listener never saw end up here when they began and ended while it was away."""
    with sessionmaker() as s:
        rows = s.execute(select(Call.linkedid, Call.started_at, Call.caller_number, Call.queue, Call.did)
                         .where(Call.pbx_id == pbx_id, Call.via_agi.is_(True), Call.status == CallStatus.IN_PROGRESS,
                                Call.started_at >= dt.datetime.fromtimestamp(since, dt.timezone.utc))
                         .order_by(Call.started_at).limit(ORPHANS_MAX)).all()
    return [{"linkedid": r.linkedid, "started_at": r.started_at.timestamp(), "caller": r.caller_number,
             "queue": r.queue, "did": r.did} for r in rows if r.started_at is not None]


async def run_ami(config, sessionmaker, stop: asyncio.Event, ready: Optional[asyncio.Event] = None,
                  *, processor: Optional[Processor] = None, stats: Optional[dict] = None) -> None:
    """Run the listener until ``stop`` is set; then drain the queue and return.

    ``ready`` is set once the stored state is loaded and the first login's
    reconciliation has been applied. ``stats`` (optional dict) receives
    counters for benchmarks and tests (connections; resyncs, the logins whose reconciliation has
    been applied, and how long the last one took).
    """
    secret = config.require_ami_secret()
    a = config.ami
    proc = processor or Processor(CallStore(sessionmaker, config.general.pbx_id,
                                            config.general.default_region,
                                            config.general.first_call_window_days,
                                            config.asterisk.outbound_contexts))
    restored, wait = None, 1.0
    while restored is None:
        try:
            restored = await asyncio.to_thread(proc.restore)
        except Exception as e:  # database down at start: keep trying, the PBX does not care
            log.error("cannot load the listener's stored state (%s: %s); retrying in %.0fs",
                      type(e).__name__, str(e).splitlines()[0][:200], wait)
            await _sleep_or_stop(stop, wait)
            wait = min(wait * 2, 30.0)
            if stop.is_set():
                if ready is not None:
                    ready.set()
                return
    if restored:
        log.info("resumed %d live call(s) from %d stored events", len(proc.it.calls), restored)
    # Long-lived objects (modules, caches, restored state) leave the collector's scans: a full
    # collection holds the GIL, i.e. stops the socket reader, for as long as it scans.
    gc.freeze()
    writer = Writer(proc)
    writer_task = asyncio.create_task(writer.run(), name="ami-writer")
    if stats is not None:
        stats["writer"], stats["processor"] = writer, proc
    loop = asyncio.get_running_loop()
    stats = stats if stats is not None else {}
    stats.setdefault("connections", 0)
    lost_at = proc.last_event_at
    heard = lost_at             # Asterisk's time of the last event heard before this connection
    # calls the FastAGI hook recorded since the listener last knew the state may have begun and
    # ended while it was away (its last event; else its last write; else a day)
    since = lost_at
    if since is None:
        try:
            st = await asyncio.to_thread(proc.store.listener_state)
            since = st["updated_at"].timestamp() if st and st.get("updated_at") else None
        except Exception as e:
            log.debug("cannot read the listener state (%s)", e)
    since = time.time() - ORPHANS_AGE if since is None else since - ORPHANS_MARGIN
    backoff = 1.0
    queue_log = QueueLog(a.queue_log)
    operators: dict = {}
    pbx_id = config.general.pbx_id
    helper = ParseHelper() if a.parser_process else None
    if helper is not None:
        await helper.start()
        stats["parser"] = helper
    try:
        while not stop.is_set():
            orphans: list = []
            try:
                operators = await asyncio.to_thread(_operators, sessionmaker)
                orphans = await asyncio.to_thread(_orphans, sessionmaker, pbx_id, since)
            except Exception as e:  # the database's trouble is the writer's to report
                log.debug("cannot read the operators or the calls begun meanwhile (%s)", e)
            sync_started = time.monotonic()
            synced = loop.create_future()

            def on_sync(snapshot, _synced=synced, _started=sync_started, _operators=operators, _orphans=orphans,
                        _heard=heard):
                now = time.time()
                if snapshot and snapshot[0].get("Event") == "CTSync":
                    snapshot[0].update(_queue_log=queue_log, _operators=_operators, _orphans=_orphans, _lost=_heard)

                def done():
                    def mark():
                        stats["last_resync_seconds"] = time.monotonic() - _started
                        stats["resyncs"] = stats.get("resyncs", 0) + 1
                        if not _synced.done():
                            _synced.set_result(True)
                    loop.call_soon_threadsafe(mark)

                writer.put(("reconcile", snapshot or [], lost_at or now, now, done)
                           if snapshot is not None else ("state", {}))
                if snapshot is None:
                    done()

            conn = AmiConnection(a.host, a.port, a.username, secret,
                                 sink=lambda recv, frame: writer.put(("ev", recv, frame)), on_sync=on_sync,
                                 sink_many=lambda recv, frames: writer.put(("evs", recv, frames)),
                                 helper=helper)
            try:
                await conn.open()
            except (OSError, asyncio.TimeoutError, LoginError) as e:
                level = logging.ERROR if isinstance(e, LoginError) else logging.WARNING
                log.log(level, "AMI %s:%s: %s; retrying in %.0fs", a.host, a.port, e, backoff)
                await _sleep_or_stop(stop, backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, a.reconnect_max)
                continue
            backoff = 1.0
            stats["connections"] += 1
            if stats["connections"] > 1:
                metrics.AMI_RECONNECTS.inc()
            metrics.AMI_CONNECTED.set(1)
            stats["connection"] = conn
            connected_at = time.time()
            log.info("AMI connected to %s:%s as %s", a.host, a.port, a.username)
            writer.put(("state", {"connected_at": connected_at}))
            conn.request_sync()
            keep = asyncio.create_task(conn.keepalive(a.ping_interval, partial(_skew, writer)))
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(conn.lost.wait())]
            if ready is not None and not ready.is_set():
                sync_wait = asyncio.ensure_future(synced)
                await asyncio.wait([sync_wait, *waiters], return_when=asyncio.FIRST_COMPLETED)
                if synced.done():
                    ready.set()
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for t in (keep, *waiters):
                t.cancel()
            lost_at = time.time()
            if conn.protocol and conn.protocol.heard:     # a Timestamp the stream's clock believes
                heard = proc.clock.usable(conn.protocol.heard, lost_at) or heard
            since = min(lost_at, heard or lost_at) - ORPHANS_MARGIN
            metrics.AMI_CONNECTED.set(0)
            writer.put(("malformed", conn.malformed + stats.get("malformed_before", 0)))
            stats["malformed_before"] = stats.get("malformed_before", 0) + conn.malformed
            conn.close()
            writer.put(("state", {"disconnected_at": lost_at}))
            if not stop.is_set():
                log.warning("AMI connection to %s:%s lost; reconnecting", a.host, a.port)
                await _sleep_or_stop(stop, 0.2)
    finally:
        if helper is not None:
            await helper.close()
        writer.closing = True
        writer.wake.set()
        await writer_task
        stats["max_backlog"] = writer.max_backlog
        if ready is not None and not ready.is_set():
            ready.set()

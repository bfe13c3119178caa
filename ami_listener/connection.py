"""One AMI connection on panoramisk: login, keep-alive pings, the state sync after login.

The sync after login asks ``Ping`` (Asterisk's clock), ``QueueStatus`` (queue members, so
operators are registered before the channels are read; callers waiting) and
``CoreShowChannels``, in this order. When the channel list is complete, ``on_sync`` gets the
snapshot: a ``CTSync`` frame (``Timestamp``: Asterisk's time then, from the Ping answer), the
``CoreShowChannel`` frames and the ``QueueEntry`` frames (dated by Asterisk's clock too), for
:func:`calltracking.interpret.reconcile.plan`.

panoramisk's :class:`~panoramisk.Manager` matches responses to actions
(Login, Ping); its protocol is subclassed so that reading stays minimal:
frames are parsed from bytes (:class:`calltracking.interpret.FrameParser`) and
the events of one read go to the writer's queue as one item (``sink_many``) without
panoramisk's pattern dispatch. With ``[ami] parser_process = yes`` the bytes are
parsed by a helper process (:mod:`ami_listener.parse_process`) and the frames come back in
order; the reads it has not answered yet are parsed here when it dies or the connection ends,
so no frame is lost or doubled. panoramisk's own reconnect is disabled: :func:`run_ami`
reconnects with back-off.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Optional

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from calltracking.interpret import IGNORED, FrameParser
from calltracking.interpret.channels import VARSET_PREFIXES

from ami_listener.parse_process import ParseHelper

log = logging.getLogger("calltracking.ami")
SYNC_ID = "ct-sync-"
#: Event types dropped by the reader before decoding (known, not needed); counted.
SKIP = frozenset(IGNORED - {"Shutdown", "FullyBooted"})


class LoginError(Exception):
    """Asterisk refused the login (wrong user or secret, or not permitted from this host)."""


class _Protocol(AMIProtocol):
    sink: Callable = None          # (received_at, frame) for one event
    sink_many: Callable = None     # (received_at, frames) for the events of one read
    on_sync: Callable = None       # (snapshot) when CoreShowChannelsComplete arrives
    helper: Optional[ParseHelper] = None     # the parser process (else parsed here)

    def connection_made(self, transport):
        super().connection_made(transport)
        self.parser = FrameParser(skip=SKIP, keep_vars=VARSET_PREFIXES)
        self.snapshot: list[dict] = []
        self.waiting: list[dict] = []      # QueueEntry frames of the sync
        self.skew = 0.0                    # Asterisk's clock minus ours (the sync's Ping)
        self.heard: Optional[str] = None   # Timestamp of the last event received
        self.frames = 0
        self.reported_skips = 0
        if self.helper is not None:
            self.helper.begin(self.parser, self._frames)

    def data_received(self, data: bytes):
        recv = time.time()
        if self.helper is not None:
            self.helper.feed(recv, data)
            return
        try:
            frames = self.parser.feed(data)
        except Exception:  # never let a parsing bug reach the transport
            log.exception("AMI frame parsing failed; data dropped")
            return
        self._frames(recv, frames)

    def drain(self) -> None:
        """The reads still in the parser process, parsed here and delivered (the connection ends)."""
        if self.helper is not None and self.helper.parser is self.parser:
            try:
                self.helper.drain()
            except Exception:  # noqa: BLE001
                log.exception("AMI frame parsing failed; data dropped")

    def connection_lost(self, exc):
        self.drain()
        super().connection_lost(exc)

    def _frames(self, recv: float, frames: list) -> None:
        """The frames of one read, in order: responses, the sync's, events to the writer."""
        self.frames += len(frames)
        events: list = []           # the events of this read, queued as one item (in order)
        for frame in frames:
            if "ActionID" in frame or "Response" in frame:
                aid = frame.get("ActionID", "")
                if aid.startswith(SYNC_ID):
                    if events:
                        self.sink_many(recv, events)
                        events = []
                    self._sync_frame(recv, frame)
                    continue
                if "Response" in frame or (aid and aid in self.responses):
                    try:
                        self.handle_message(Message(frame))
                    except Exception:
                        log.exception("bad AMI response frame")
                    continue
            if "Event" in frame:
                if frame["Event"] == "Shutdown":
                    log.warning("Asterisk is shutting down")
                events.append(frame)
        if events:
            for frame in reversed(events):
                if frame.get("Timestamp"):
                    self.heard = frame["Timestamp"]
                    break
            self.sink_many(recv, events)
        p = self.parser
        if p.skipped != self.reported_skips:
            privs = {k.decode("ascii", "replace") for k in p.privileges}
            p.privileges.clear()
            self.sink(recv, {"_skipped": p.skipped - self.reported_skips, "_privileges": privs})
            self.reported_skips = p.skipped

    def _sync_frame(self, recv: float, frame: dict) -> None:
        ev = frame.get("Event", "")
        aid = frame.get("ActionID", "")
        if ev == "CoreShowChannel":
            self.snapshot.append(frame)
        elif ev == "CoreShowChannelsComplete":
            clock = {"Event": "CTSync", "Timestamp": f"{recv + self.skew:.6f}"}
            snap = [clock, *self.snapshot, *self.waiting]
            self.snapshot, self.waiting = [], []
            self.on_sync(snap)
        elif ev == "QueueMember":
            self.sink(recv, frame)
        elif ev == "QueueEntry":
            self.waiting.append(dict(frame, Timestamp=f"{recv + self.skew:.6f}"))
        elif frame.get("Response") == "Error":
            log.warning("AMI action %s refused: %s", aid, frame.get("Message"))
            if aid.startswith(SYNC_ID + "channels-"):
                self.on_sync(None)
        elif aid.startswith(SYNC_ID + "ping-") and frame.get("Timestamp"):
            try:
                self.skew = float(frame["Timestamp"]) - recv
            except ValueError:
                pass


class _Manager(Manager):
    """panoramisk's Manager without its fixed-delay reconnect (we back off ourselves)."""

    def __init__(self, lost: asyncio.Event, **config):
        super().__init__(**config)
        self.lost = lost

    def connection_lost(self, exc):
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self.lost.set()


class AmiConnection:
    def __init__(self, host: str, port: int, username: str, secret: str,
                 sink: Callable, on_sync: Callable, timeout: float = 10.0,
                 sink_many: Optional[Callable] = None, helper: Optional[ParseHelper] = None):
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.sink, self.on_sync, self.timeout = sink, on_sync, timeout
        self.sink_many = sink_many or (lambda recv, frames: [sink(recv, f) for f in frames])
        self.lost = asyncio.Event()
        self.manager: Optional[_Manager] = None
        self.protocol: Optional[_Protocol] = None
        self.helper = helper
        self._sync_n = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.helper is not None:
            await self.helper.ensure()
        self.manager = _Manager(self.lost, loop=loop, host=self.host, port=self.port, ping_delay=3600)

        def factory():
            p = _Protocol()
            p.sink, p.sink_many, p.on_sync = self.sink, self.sink_many, self.on_sync
            p.helper = self.helper
            return p

        _, proto = await asyncio.wait_for(loop.create_connection(factory, self.host, self.port), self.timeout)
        self.protocol = proto
        m = self.manager
        proto.factory, proto.log = m, log
        proto.config = m.config
        proto.encoding = m.encoding = "utf-8"
        m.protocol, m.responses = proto, proto.responses
        m._connected = True
        fut = m.send_action({"Action": "Login", "Username": self.username, "Secret": self.secret,
                             "Events": "on"})
        try:
            resp = await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            self.close()
            raise LoginError(f"no answer to Login from {self.host}:{self.port} within {self.timeout:.0f}s") from None
        if not resp.success:
            self.close()
            raise LoginError(f"Asterisk refused the login of AMI user {self.username!r}: "
                             f"{resp.get('Message', resp.get('Response', '?'))}")
        m.authenticated = True

    def request_sync(self) -> None:
        """Ask for Asterisk's clock, queues and live channels; the answer arrives through
        ``sink`` (queue members) and ``on_sync`` (the snapshot)."""
        self._sync_n += 1
        n = self._sync_n
        data = (f"Action: Ping\r\nActionID: {SYNC_ID}ping-{n}\r\n\r\n"
                f"Action: QueueStatus\r\nActionID: {SYNC_ID}queues-{n}\r\n\r\n"
                f"Action: CoreShowChannels\r\nActionID: {SYNC_ID}channels-{n}\r\n\r\n")
        self.protocol.transport.write(data.encode())

    async def ping(self, timeout: float) -> Optional[float]:
        """Send Ping; returns Asterisk's clock minus ours (seconds) when the answer has a Timestamp."""
        t0 = time.time()
        resp = await asyncio.wait_for(self.manager.send_action({"Action": "Ping"}), timeout)
        t1 = time.time()
        ts = resp.get("Timestamp") if resp is not None else None
        try:
            return float(ts) - (t0 + t1) / 2 if ts else None
        except ValueError:
            return None

    async def keepalive(self, interval: float, on_skew: Callable[[float], None]) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(interval)
            try:
                skew = await self.ping(max(5.0, interval))
            except asyncio.TimeoutError:
                log.warning("no answer to Ping within %.0fs: reconnecting", max(5.0, interval))
                self.close()
                return
            if skew is not None:
                on_skew(skew)

    @property
    def malformed(self) -> int:
        return self.protocol.parser.malformed if self.protocol is not None else 0

    def close(self) -> None:
        if self.protocol is not None:
            self.protocol.drain()       # what the parser process still has: before `lost`
            if self.protocol.transport is not None:
                self.protocol.transport.close()
        self.lost.set()

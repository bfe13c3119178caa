"""A real TCP AMI server for tests and the benchmark (:class:`FakeAsterisk`: Asterisk's banner,
login, actions, replay), and the tools that read recorded AMI streams.

It serves a script of raw frames (byte-exact, as recorded) to whoever is
logged in. The test moves the script forward with :meth:`emit`; frames
emitted while nobody is connected are "lost" like real events during an
outage, but the server's own view of live channels (for ``CoreShowChannels``)
still follows them, as Asterisk's would.
"""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Callable, Optional

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
SEP = b"\r\n\r\n"


def split_frames(data: bytes) -> list[bytes]:
    """Frames of a recorded stream (each with its terminating blank line), banner removed."""
    if data.startswith(b"Asterisk Call Manager/"):
        data = data.split(b"\r\n", 1)[1]
    parts = data.split(SEP)
    return [p + SEP for p in parts if p.strip()]


def load(path) -> list[bytes]:
    """The frames of a recorded ``.ami`` file."""
    return split_frames(Path(path).read_bytes())


def event_count(frames) -> int:
    """The events among ``frames`` (not the answers to an action: those carry an ActionID)."""
    return sum(1 for f in frames if f.startswith(b"Event: ") and b"ActionID: " not in f)


def headers(frame: bytes) -> dict:
    """A frame's headers; a repeated name keeps its first value."""
    out = {}
    for line in frame.decode("utf-8", "replace").split("\r\n"):
        k, sep, v = line.partition(": ")
        if sep and k not in out:
            out[k] = v
    return out


def queue_members_from_conf(path) -> dict:
    """``member => iface,penalty,name,state`` lines of a queues.conf -> {queue: [(iface, name)]}."""
    queues, cur = {}, None
    for line in Path(path).read_text().splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            cur = line[1:-1]
            if cur != "general":
                queues[cur] = []
        elif cur in queues and line.startswith("member"):
            parts = [p.strip() for p in line.split("=>", 1)[1].split(",")]
            queues[cur].append((parts[0], parts[2] if len(parts) > 2 else parts[0]))
    return queues


class FakeAsterisk:
    """An AMI server on a free loopback port, on its own event loop in a thread: :meth:`add`
    frames to its script, :meth:`emit` them to the logged-in clients; it answers ``Login``,
    ``Ping`` (its clock, ``clock_offset`` off), ``CoreShowChannels`` and ``QueueStatus``."""

    def __init__(self, username="calltracking", secret="ctsecret", members: Optional[dict] = None,
                 clock_offset: float = 0.0, chunk: int = 0):
        self.username, self.secret = username, secret
        self.members = members or {}
        self.clock_offset = clock_offset
        self.chunk = chunk                  # >0: write in chunks of this size (split frames)
        self.frames: list[bytes] = []
        self.cursor = 0
        self.live: dict[str, dict] = {}
        self.clients: list[asyncio.StreamWriter] = []
        self.logins = 0
        self.failed_logins = 0
        self.actions: list[str] = []
        self.vclock = 0.0                    # last Timestamp seen in the script
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self._server = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeAsterisk":
        self.thread.start()
        self._call(self._start())
        return self

    async def _start(self):
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self):
        async def _stop():
            for w in list(self.clients):
                w.close()
            self._server.close()
        try:
            self._call(_stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def _call(self, coro, timeout=60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ------------------------------------------------------------------ script
    def add(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)

    def emit(self, n: Optional[int] = None) -> int:
        """Send the next ``n`` frames (all remaining by default) to the logged-in clients."""
        return self._call(self._emit(n))

    async def _emit(self, n):
        end = len(self.frames) if n is None else min(len(self.frames), self.cursor + n)
        sent = 0
        while self.cursor < end:
            stop = min(end, self.cursor + 500)
            block = self.frames[self.cursor:stop]
            self._advance(stop)
            payload = b"".join(block)
            for w in list(self.clients):
                try:
                    if self.chunk:
                        for i in range(0, len(payload), self.chunk):
                            w.write(payload[i:i + self.chunk])
                            await w.drain()
                    else:
                        w.write(payload)
                        await w.drain()
                except (ConnectionError, RuntimeError):
                    self.clients.remove(w)
            sent += len(block)
        return sent

    def emit_until(self, predicate) -> int:
        """Emit frames up to and including the first one whose headers match ``predicate``."""
        return self.emit(self.position_after(predicate) - self.cursor)

    def drop(self, skip_to: Optional[int] = None, then: Optional[Callable[[], None]] = None) -> None:
        """Cut every client connection (as a network failure would). With ``skip_to``, the script
        then advances unsent to that position and ``then`` runs, all in one step of the server's
        loop: a listener reconnecting at once (it retries after 0.2 s) can only log in and ask
        for its resync after that, never in between (under load, a test thread doing these one
        by one could lose the race: the listener heard part of the gap, or was answered the
        old state)."""
        async def _drop():
            for w in list(self.clients):
                w.transport.abort()
            self.clients.clear()
            if skip_to is not None:
                self._advance(skip_to)
            if then is not None:
                then()
        self._call(_drop())

    def _advance(self, position: int) -> None:
        """The script up to ``position`` has happened (its state tracked); sending is the caller's."""
        for f in self.frames[self.cursor:position]:
            self._track(f)
        self.cursor = max(self.cursor, min(position, len(self.frames)))

    def position_after(self, predicate) -> int:
        """The script position just after the next frame whose headers match ``predicate``."""
        for i in range(self.cursor, len(self.frames)):
            if predicate(headers(self.frames[i])):
                return i + 1
        raise AssertionError("no frame matches")

    def _track(self, frame: bytes) -> None:
        if b"Event: " not in frame[:40]:
            return
        h = headers(frame)
        ev = h.get("Event")
        try:
            self.vclock = float(h.get("Timestamp") or self.vclock)
        except ValueError:
            pass
        if ev == "Newchannel":
            self.live[h["Uniqueid"]] = dict(h, created=self.vclock, BridgeId="")
        elif ev == "Hangup":
            self.live.pop(h.get("Uniqueid", ""), None)
        elif ev == "BridgeEnter" and h.get("Uniqueid") in self.live:
            self.live[h["Uniqueid"]]["BridgeId"] = h.get("BridgeUniqueid", "")
        elif ev == "BridgeLeave" and h.get("Uniqueid") in self.live:
            self.live[h["Uniqueid"]]["BridgeId"] = ""
        elif ev == "QueueMemberAdded":
            self.members.setdefault(h["Queue"], []).append((h["Interface"], h.get("MemberName", "")))
        elif ev == "QueueMemberRemoved":
            self.members[h["Queue"]] = [m for m in self.members.get(h["Queue"], []) if m[0] != h["Interface"]]

    # ------------------------------------------------------------------ protocol
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        writer.write(BANNER)
        authed = False
        try:
            while True:
                try:
                    raw = await reader.readuntil(SEP)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                h = headers(raw)
                action = h.get("Action", "").lower()
                aid = h.get("ActionID", "")
                self.actions.append(action)
                idl = f"ActionID: {aid}\r\n" if aid else ""
                if action == "login":
                    if h.get("Username") == self.username and h.get("Secret") == self.secret:
                        authed = True
                        self.logins += 1
                        writer.write(f"Response: Success\r\n{idl}Message: Authentication accepted\r\n\r\n"
                                     "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\n"
                                     "LastReload: 10\r\nStatus: Fully Booted\r\n\r\n".encode())
                        self.clients.append(writer)
                    else:
                        self.failed_logins += 1
                        writer.write(f"Response: Error\r\n{idl}Message: Authentication failed\r\n\r\n".encode())
                        await writer.drain()
                        break
                elif not authed:
                    writer.write(f"Response: Error\r\n{idl}Message: Permission denied\r\n\r\n".encode())
                elif action == "ping":
                    ts = time.time() + self.clock_offset
                    writer.write(f"Response: Success\r\n{idl}Ping: Pong\r\nTimestamp: {ts:.6f}\r\n\r\n".encode())
                elif action == "coreshowchannels":
                    writer.write(self._channels(idl))
                elif action == "queuestatus":
                    writer.write(self._queues(idl))
                elif action == "logoff":
                    writer.write(f"Response: Goodbye\r\n{idl}Message: Thanks for all the fish.\r\n\r\n".encode())
                    await writer.drain()
                    break
                else:
                    writer.write(f"Response: Error\r\n{idl}Message: Invalid/unknown command\r\n\r\n".encode())
                await writer.drain()
        finally:
            if writer in self.clients:
                self.clients.remove(writer)
            writer.close()

    def _channels(self, idl: str) -> bytes:
        out = [f"Response: Success\r\n{idl}EventList: start\r\nMessage: Channels will follow\r\n\r\n"]
        for ch in self.live.values():
            secs = max(0, int(self.vclock - ch["created"]))
            out.append(
                f"Event: CoreShowChannel\r\n{idl}Channel: {ch['Channel']}\r\nChannelState: 6\r\n"
                f"ChannelStateDesc: Up\r\nCallerIDNum: {ch.get('CallerIDNum', '')}\r\n"
                f"CallerIDName: {ch.get('CallerIDName', '')}\r\nConnectedLineNum: \r\nConnectedLineName: \r\n"
                f"Language: en\r\nAccountCode: \r\nContext: {ch.get('Context', '')}\r\n"
                f"Exten: {ch.get('Exten', '')}\r\nPriority: 1\r\nUniqueid: {ch['Uniqueid']}\r\n"
                f"Linkedid: {ch['Linkedid']}\r\nApplication: Queue\r\nApplicationData: \r\n"
                f"Duration: {secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}\r\n"
                f"BridgeId: {ch['BridgeId']}\r\n\r\n")
        out.append(f"Event: CoreShowChannelsComplete\r\n{idl}EventList: Complete\r\n"
                   f"ListItems: {len(self.live)}\r\n\r\n")
        return "".join(out).encode()

    def _queues(self, idl: str) -> bytes:
        out = [f"Response: Success\r\n{idl}EventList: start\r\nMessage: Queue status will follow\r\n\r\n"]
        n = 0
        for queue, members in self.members.items():
            out.append(f"Event: QueueParams\r\n{idl}Queue: {queue}\r\nMax: 0\r\nStrategy: linear\r\n"
                       f"Calls: 0\r\nHoldtime: 0\r\nTalkTime: 0\r\nCompleted: 0\r\nAbandoned: 0\r\n\r\n")
            for iface, name in members:
                n += 1
                out.append(f"Event: QueueMember\r\n{idl}Queue: {queue}\r\nName: {name}\r\n"
                           f"Location: {iface}\r\nStateInterface: {iface.removesuffix('/n')}\r\n"
                           f"Membership: static\r\nPenalty: 0\r\nCallsTaken: 0\r\nLastCall: 0\r\n"
                           f"LastPause: 0\r\nLoginTime: 0\r\nInCall: 0\r\nStatus: 1\r\nPaused: 0\r\n"
                           f"PausedReason: \r\nWrapuptime: 0\r\n\r\n")
        out.append(f"Event: QueueStatusComplete\r\n{idl}EventList: Complete\r\nListItems: {n}\r\n\r\n")
        return "".join(out).encode()

    def wait_logins(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.time() + timeout
        while self.logins < n or len(self.clients) < 1:
            if time.time() > deadline:
                raise AssertionError(f"listener did not log in (logins={self.logins})")
            time.sleep(0.01)

"""The AMI frame parser in a helper process (``[ami] parser_process``, off by default).

Parsing the byte stream (:class:`calltracking.interpret.FrameParser`: 3.2 µs per event read,
the skipped ones included) was 40 % of the listener's Python time at a sustained rate, all of it
holding the GIL that the interpretation and the database writes need too. Here one helper
process (:mod:`ami_listener.parse_worker`, started once for the listener's lifetime) parses,
and each socket read costs the listener a pipe write and one ``marshal.loads`` of its frames
(1.4 µs per event read). The frames come back in the order of the reads, each read's with its
receive time.

Nothing read is lost or parsed twice when the helper fails: every read is kept until its frames
have come back, and so is the partial frame the last answered read left. When the helper dies,
or the connection ends with reads still in it (:meth:`ParseHelper.drain`), the listener parses
what is outstanding itself, in order, from that partial frame on, and the helper's late answers
are dropped; after a death the rest of that connection is parsed in the listener's process and
the next connection starts a new helper (at most one start a minute).
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import marshal
import os
import subprocess
import sys
import time
from collections import deque
from typing import Callable, Optional

from calltracking.interpret.frames import FrameParser

from ami_listener import parse_worker

log = logging.getLogger("calltracking.ami")
#: Seconds between two starts of the helper after it died.
RESTART_EVERY = 60.0
#: Bytes each pipe to and from the helper holds (Linux's maximum for a user by default).
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_HEAD, _LENGTH = parse_worker.HEAD, parse_worker.LENGTH


class ParseHelper:
    """The helper process and the stream of the current connection.

    ``begin(parser, deliver)`` at each connection: ``parser`` is the connection's own
    :class:`FrameParser` (its ``skip``/``keep_vars`` are sent to the helper; its counters
    ``skipped``, ``privileges``, ``malformed``, ``banner`` are kept up to date from the answers;
    it parses when the helper cannot), ``deliver(recv, frames)`` gets the frames.
    """

    def __init__(self):
        self.proc: Optional[subprocess.Popen] = None
        self._out: Optional[asyncio.WriteTransport] = None
        self._in: Optional[asyncio.ReadTransport] = None
        self.parser: Optional[FrameParser] = None
        self.deliver: Optional[Callable] = None
        self.pending: deque = deque()       # (recv, data) sent, not answered yet
        self.tail = b""                     # the partial frame the last answered read left
        self.discard = 0                    # answers to drop (reads parsed here meanwhile)
        self.inline = True                  # this connection is parsed in the listener's process
        self.started_at = -RESTART_EVERY
        self.stats = {"starts": 0, "deaths": 0, "reads": 0, "inline_reads": 0}
        self._buf = bytearray()

    # ------------------------------------------------------------ lifecycle
    @property
    def alive(self) -> bool:
        return self._out is not None and not self._out.is_closing()

    async def start(self) -> bool:
        """Start the helper (False, logged, when it cannot be: parsing stays in-process)."""
        if self.alive:
            return True
        self.started_at = time.monotonic()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            self.proc = subprocess.Popen([sys.executable, parse_worker.__file__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, close_fds=True)
            for pipe in (self.proc.stdin, self.proc.stdout):
                _widen(pipe.fileno())
            loop = asyncio.get_running_loop()
            self._out, _ = await loop.connect_write_pipe(lambda: _Ends(self), self.proc.stdin)
            self._in, _ = await loop.connect_read_pipe(lambda: _Answers(self), self.proc.stdout)
        except Exception as e:  # noqa: BLE001 - no helper: the listener parses itself
            log.warning("AMI parser process could not start (%s: %s); parsing in the listener's process",
                        type(e).__name__, e)
            self._stop()
            return False
        self._buf.clear()
        self.discard = 0
        self.stats["starts"] += 1
        log.info("AMI frames are parsed in a helper process (pid %s)", self.proc.pid)
        return True

    async def close(self) -> None:
        self.drain()
        self._stop()
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def _stop(self) -> None:
        for t in (self._out, self._in):
            if t is not None:
                t.close()
        self._out = self._in = None

    # ------------------------------------------------------------ one connection
    async def ensure(self) -> None:
        """Before a connection: start the helper again when it died a minute ago or more."""
        if not self.alive and time.monotonic() - self.started_at >= RESTART_EVERY:
            await self.start()

    def begin(self, parser: FrameParser, deliver: Callable) -> None:
        """A new connection's stream: parsed by the helper when it runs, else by ``parser``."""
        self.drain()
        self.parser, self.deliver, self.tail = parser, deliver, b""
        self.inline = not self.alive
        if not self.inline:
            self._send(b"C", marshal.dumps((sorted(parser.skip), parser.keep_vars)))

    def feed(self, recv: float, data: bytes) -> None:
        """One socket read of the current connection."""
        self.stats["reads"] += 1
        if self.inline:
            self.stats["inline_reads"] += 1
            self.deliver(recv, self.parser.feed(data))
            return
        self.pending.append((recv, data))
        self._send(b"D", data)

    def drain(self) -> None:
        """Parse here, in order, what the helper has not answered yet, and go on here for the
        rest of this connection (the connection ended, or the helper died)."""
        if self.parser is None:
            return
        self.inline = True
        if not self.pending:
            return
        self.discard += len(self.pending)
        self.parser.buf = self.tail
        pending, self.pending = self.pending, deque()
        for recv, data in pending:
            self.stats["inline_reads"] += 1
            self.deliver(recv, self.parser.feed(data))

    def _send(self, kind: bytes, payload: bytes) -> None:
        self._out.write(_HEAD.pack(kind, len(payload)))
        self._out.write(payload)

    # ------------------------------------------------------------ the answers
    def _received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= 4:
            (n,) = _LENGTH.unpack_from(buf, pos)
            if size - pos - 4 < n:
                break
            blob = bytes(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            if self.discard:
                self.discard -= 1
                continue
            self._answer(marshal.loads(blob))
        del buf[:pos]

    def _answer(self, answer: tuple) -> None:
        frames, skipped, privileges, malformed, banner, leftover = answer
        recv, data = self.pending.popleft()
        p = self.parser
        p.skipped, p.malformed, p.banner = skipped, malformed, banner
        for k, v in privileges.items():
            p.privileges[k] = p.privileges.get(k, 0) + v
        if leftover == 0:
            self.tail = b""
        elif leftover <= len(data):
            self.tail = data[-leftover:]
        else:
            self.tail = self.tail[len(self.tail) - (leftover - len(data)):] + data
        self.deliver(recv, frames)

    def _died(self) -> None:
        if self._out is None:
            return                      # closed by us
        self.stats["deaths"] += 1
        code = self.proc.poll() if self.proc is not None else None
        log.warning("AMI parser process ended (exit code %s); parsing in the listener's process", code)
        self._stop()
        try:
            self.drain()
        except Exception:  # noqa: BLE001 - called from a pipe's callback: say it, the connection goes on
            log.exception("AMI parser process: cannot parse its outstanding reads here")


def _widen(fd: int) -> None:
    """A pipe of PIPE_BYTES instead of Linux's 64 KiB: the listener's loop shares the GIL with
    the writer thread (a 5 ms switch interval), so each of its turns must move enough."""
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:     # above /proc/sys/fs/pipe-max-size for this user: the default stays
        pass


class _Ends(asyncio.BaseProtocol):
    """The pipe to the helper: broken when it died."""

    def __init__(self, helper: ParseHelper):
        self.helper = helper

    def connection_lost(self, exc) -> None:
        self.helper._died()


class _Answers(asyncio.Protocol):
    def __init__(self, helper: ParseHelper):
        self.helper = helper

    def data_received(self, data: bytes) -> None:
        try:
            self.helper._received(data)
        except Exception:  # noqa: BLE001 - a broken answer: parse what is outstanding here
            log.exception("AMI parser process: unreadable answer")
            self.helper._died()

    def connection_lost(self, exc) -> None:
        self.helper._died()

"""A small synchronous AMI client for driving a real Asterisk: the tests' and the recorders' one.

Not the product's listener: the tests' own hands on the PBX (``Originate``, ``DBPut``,
``Atxfer``, ``BlindTransfer``, ``Hangup``…) and their own eyes (every event, kept in order, and
the raw bytes exactly as received, so a session can be saved as a recorded stream: the live
suite, ``tests/ami/record_live.py`` and ``tests/ami/live_restarts.py`` do). A reader thread
parses frames; an action waits for the response that carries its ``ActionID``.
"""
from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Callable


class AmiError(RuntimeError):
    pass


class AmiClient:
    """One AMI session logged in as ``username``. ``events``: every event received (answers to
    list actions included), in order; ``raw``: every byte received, across :meth:`reconnect`.
    ``connect_timeout``: how long to keep trying to connect (Asterisk may still be starting)."""

    def __init__(self, port: int, username: str, secret: str, host: str = "127.0.0.1",
                 events: bool = True, timeout: float = 10.0, connect_timeout: float = 0.0):
        self.address = (host, port)
        self.username, self.secret, self.events_on = username, secret, events
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.raw = bytearray()                # everything received, CRLF framing kept
        self.events: list[dict] = []
        self._responses: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self._connect()

    def _connect(self) -> None:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                sock = socket.create_connection(self.address, timeout=self.timeout)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        sock.settimeout(None)
        with self._cond:
            self.sock = sock
            self._closed = False
        threading.Thread(target=self._read, args=(sock,), name="ami-test-client", daemon=True).start()
        r = self.action("Login", Username=self.username, Secret=self.secret,
                        Events="on" if self.events_on else "off")
        if r.get("Response") != "Success":
            raise AmiError(f"AMI login as {self.username!r} failed: {r.get('Message')}")

    def reconnect(self) -> None:
        """Log in again on a new connection (after Asterisk restarted); ``raw`` and ``events``
        go on."""
        self._connect()

    def _read(self, sock: socket.socket) -> None:
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    if sock is self.sock:      # not an old connection's reader
                        self._closed = True
                    self._cond.notify_all()
                return
            with self._cond:
                self.raw += data
            buf += data
            while b"\r\n\r\n" in buf:
                frame, buf = buf.split(b"\r\n\r\n", 1)
                msg: dict = {}
                for line in frame.decode("utf-8", "replace").split("\r\n"):
                    k, sep, v = line.partition(":")
                    if sep:
                        msg.setdefault(k.strip(), v.strip())
                with self._cond:
                    if "Event" in msg:         # OriginateResponse has a Response header too
                        self.events.append(msg)
                    elif "Response" in msg and "ActionID" in msg:
                        self._responses[msg["ActionID"]] = msg
                    self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Asterisk closed the connection (or it broke)."""
        return self._closed

    def wait_closed(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout)

    def send(self, name: str, action_id: str = "", **headers) -> str:
        """Send one action without waiting; its ActionID. A list value repeats the header."""
        aid = action_id or f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        for k, v in headers.items():
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append(f"{k}: {item}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return aid

    def action(self, name: str, timeout: float = 10.0, action_id: str = "", **headers) -> dict:
        """Send one action; return its response frame (``Response: Success|Error``)."""
        aid = self.send(name, action_id, **headers)
        deadline = time.monotonic() + timeout
        with self._cond:
            while aid not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError(f"no response to {name} within {timeout} s")
                self._cond.wait(left)
            return self._responses.pop(aid)

    def wait_event(self, match: Callable[[dict], bool], timeout: float = 30.0,
                   since: int = 0) -> dict:
        """The first event (from index ``since``) for which ``match`` is true."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.events):
                    if match(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError("expected event did not arrive")
                self._cond.wait(left)

    def find(self, match: Callable[[dict], bool]) -> list[dict]:
        with self._cond:
            return [e for e in self.events if match(e)]

    def wait_hungup(self, since: int = 0, timeout: float = 120.0) -> None:
        """Until every channel created from event ``since`` on has hung up, and no new one came
        for a second (the CDRs and queue_log lines are written by then)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            with self._cond:
                made = {e["Uniqueid"] for e in self.events[since:] if e.get("Event") == "Newchannel"}
                gone = {e["Uniqueid"] for e in self.events[since:] if e.get("Event") == "Hangup"}
            quiet = quiet + 1 if made and made <= gone else 0
            if quiet == 2:
                return
            time.sleep(1.0)
        raise AmiError("channels still up")

    def db_put(self, family: str, key: str, value) -> None:
        r = self.action("DBPut", Family=family, Key=key, Val=str(value))
        if r.get("Response") != "Success":
            raise AmiError(f"DBPut {family}/{key}: {r.get('Message')}")

    def db_set(self, **values) -> None:
        """AstDB values by ``family__key``: ``db_set(ring__101=2, fwd__201=None)`` puts ring/101 = 2
        and deletes fwd/201."""
        for name, value in values.items():
            family, _, key = name.partition("__")
            if value is None:
                self.action("DBDel", Family=family, Key=key)
            else:
                self.db_put(family, key, value)

    def close(self, logoff: bool = True) -> None:
        """Log off (unless ``logoff`` is false: a recording ends with what Asterisk sent) and close."""
        if logoff:
            try:
                self.action("Logoff", timeout=2)
            except (AmiError, OSError):
                pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
